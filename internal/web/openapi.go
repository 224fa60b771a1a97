package web

import _ "embed"

// OpenAPIYAML is the OpenAPI 3.1 description of the API (openapi.yaml),
// for the server to serve.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
