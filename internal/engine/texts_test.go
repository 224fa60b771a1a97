package engine

import "testing"

func TestTextsInBothLanguages(t *testing.T) {
	for _, p := range catalog.Check() {
		t.Error(p)
	}
}
