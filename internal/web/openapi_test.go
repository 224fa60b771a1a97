package web

import (
	"bytes"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The OpenAPI document (openapi.yaml) must describe exactly the routes
// that (*API).Handler serves. The routes are read from api.go's source and
// the document is scanned line by line, relying on its indentation: under
// "paths:", path keys are indented 2 spaces and method keys 4.

// routeRE matches a route registration: h("GET /api/v1/...", a.fn).
var routeRE = regexp.MustCompile(`\bh\("([A-Z]+) (/api/v1/[^"]*)",`)

// caseRE matches the cases of act's switch: case "restart", "resume":.
var caseRE = regexp.MustCompile(`(?m)^\s*case\s+("[a-z_]+"(?:\s*,\s*"[a-z_]+")*)\s*:`)

var methodKeyRE = regexp.MustCompile(`^(get|put|post|delete|options|head|patch|trace):(\s|$)`)

// funcBody returns the source of the function that starts with sig, up to
// its closing brace at the start of a line.
func funcBody(t *testing.T, src, sig string) string {
	t.Helper()
	i := strings.Index(src, sig)
	if i < 0 {
		t.Fatalf("api.go has no %q", sig)
	}
	body := src[i:]
	if j := strings.Index(body, "\n}\n"); j >= 0 {
		body = body[:j]
	}
	return body
}

// servedRoutes returns the "METHOD path" pairs registered in api.go, with
// {action} routes expanded into each action that act accepts.
func servedRoutes(t *testing.T) (routes []string, actions []string) {
	t.Helper()
	data, err := os.ReadFile("api.go")
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	for _, m := range caseRE.FindAllStringSubmatch(funcBody(t, src, "func (a *API) act("), -1) {
		for _, q := range strings.Split(m[1], ",") {
			actions = append(actions, strings.Trim(strings.TrimSpace(q), `"`))
		}
	}
	if len(actions) == 0 {
		t.Fatal("found no actions in act's switch in api.go")
	}
	for _, m := range routeRE.FindAllStringSubmatch(funcBody(t, src, "func (a *API) Handler()"), -1) {
		routes = append(routes, m[1]+" "+m[2])
	}
	if len(routes) == 0 {
		t.Fatal("found no h(\"METHOD /api/v1/...\", ...) routes in (*API).Handler")
	}
	return expandActions(routes, actions), actions
}

// expandActions replaces a route with an {action} segment by one route per
// action, so that the document may list the actions as concrete paths or
// as one {action} path.
func expandActions(routes, actions []string) []string {
	var out []string
	for _, r := range routes {
		if !strings.Contains(r, "{action}") {
			out = append(out, r)
			continue
		}
		for _, a := range actions {
			out = append(out, strings.Replace(r, "{action}", a, 1))
		}
	}
	return out
}

// indentOf returns the number of leading spaces.
func indentOf(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

// documentedRoutes scans the document's "paths:" section for path keys
// (indent 2) and their method keys (indent 4).
func documentedRoutes(t *testing.T, doc string) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	inPaths, path := false, ""
	for n, line := range strings.Split(doc, "\n") {
		n++
		line = strings.TrimRight(line, " \r")
		if strings.Contains(line, "\t") {
			t.Fatalf("openapi.yaml:%d: a tab; indent with spaces", n)
		}
		if line == "paths:" {
			inPaths = true
			continue
		}
		trimmed := strings.TrimSpace(line)
		if !inPaths || trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := indentOf(line)
		if indent == 0 {
			break // the next top-level key
		}
		switch indent {
		case 2:
			key, ok := strings.CutSuffix(trimmed, ":")
			key = strings.Trim(key, `"'`)
			if !ok || !strings.HasPrefix(key, "/") {
				t.Fatalf("openapi.yaml:%d: expected a path key like `  /api/v1/...:` under paths, got %q", n, line)
			}
			path = key
		case 4:
			if m := methodKeyRE.FindStringSubmatch(trimmed); m != nil {
				r := strings.ToUpper(m[1]) + " " + path
				if seen[r] {
					t.Errorf("openapi.yaml:%d: %s is documented twice", n, r)
				}
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	if !inPaths {
		t.Fatal("openapi.yaml has no top-level paths: section")
	}
	return out
}

func readDoc(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("openapi: 3.1.")) {
		t.Fatal("openapi.yaml must start with `openapi: 3.1.x`")
	}
	if !bytes.Equal(data, OpenAPIYAML) {
		t.Error("the embedded OpenAPIYAML differs from openapi.yaml")
	}
	return string(data)
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	served, actions := servedRoutes(t)
	documented := expandActions(documentedRoutes(t, readDoc(t)), actions)

	inDoc := map[string]bool{}
	for _, r := range documented {
		inDoc[r] = true
	}
	isServed := map[string]bool{}
	var missing, extra []string
	for _, r := range served {
		isServed[r] = true
		if !inDoc[r] {
			missing = append(missing, r)
		}
	}
	for _, r := range documented {
		if !isServed[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes served by (*API).Handler but missing from openapi.yaml:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("routes in openapi.yaml that (*API).Handler does not serve:\n  %s", strings.Join(extra, "\n  "))
	}
	t.Logf("%d routes (actions %s) documented", len(served), strings.Join(actions, ", "))
}

// refRE matches a local reference: $ref: "#/components/schemas/Task".
var refRE = regexp.MustCompile(`\$ref:\s*["']?#/components/([A-Za-z]+)/([A-Za-z0-9._-]+)["']?`)

// Every $ref points at a component that the document defines (under
// "components:", sections at indent 2 and names at indent 4).
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := readDoc(t)
	defined := map[string]bool{}
	inComponents, section := false, ""
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimRight(line, " \r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := indentOf(line)
		if indent == 0 {
			inComponents = line == "components:"
			continue
		}
		if !inComponents {
			continue
		}
		key, ok := strings.CutSuffix(trimmed, ":")
		if !ok {
			continue
		}
		switch indent {
		case 2:
			section = key
		case 4:
			defined[section+"/"+strings.Trim(key, `"'`)] = true
		}
	}
	if len(defined) == 0 {
		t.Fatal("openapi.yaml defines no components")
	}
	for _, m := range refRE.FindAllStringSubmatch(doc, -1) {
		if !defined[m[1]+"/"+m[2]] {
			t.Errorf("openapi.yaml refers to #/components/%s/%s, which it does not define", m[1], m[2])
		}
	}
}
