package web

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every text the panel shows exists in Czech and in English, with the
// same formatting verbs, and every key the pages and the code use is in
// the catalog.
func TestTextsInBothLanguages(t *testing.T) {
	for _, p := range catalog.Check() {
		t.Error(p)
	}
	used := map[string]string{}
	keyRE := regexp.MustCompile(`\b(?:t|tf|tn|tr\(r,) ?\(?"([a-z][a-z0-9_.]*[a-z0-9_])"`)
	scan := func(name string, data []byte) {
		for _, m := range keyRE.FindAllSubmatch(data, -1) {
			used[string(m[1])] = name
		}
	}
	fs.WalkDir(assets, "templates", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := fs.ReadFile(assets, path)
			scan(path, data)
		}
		return nil
	})
	goFiles, _ := filepath.Glob("*.go")
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scan(f, data)
	}
	if len(used) < 150 {
		t.Fatalf("only %d keys found in use: the scan is broken", len(used))
	}
	for key, where := range used {
		if _, ok := texts[key]; !ok {
			t.Errorf("%s uses %q, which has no text", where, key)
		}
	}
}
