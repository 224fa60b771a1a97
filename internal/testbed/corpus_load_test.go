package testbed

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestCorpusLoad(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{})
	if err := d.AddUser("load", "pw", 0); err != nil {
		t.Fatal(err)
	}
	c := d.LoginT(t, "load", "pw")
	corpus := GenerateCorpus(CorpusOptions{Seed: 5})
	ctx := context.Background()
	if err := corpus.Load(ctx, c); err != nil {
		t.Fatal(err)
	}
	more := corpus.More(9, 10)
	if err := more.Load(ctx, c); err != nil {
		t.Fatalf("loading More into existing folders: %v", err)
	}

	want := map[string]uint32{}
	for _, m := range append(slices.Clone(corpus.Messages), more.Messages...) {
		want[m.Folder]++
	}
	var total uint32
	for _, f := range corpus.Folders {
		n, err := MessageCount(ctx, c, f) // separator is "/", names map 1:1
		if err != nil {
			t.Fatal(err)
		}
		if n != want[f] {
			t.Errorf("%s: %d messages, want %d", f, n, want[f])
		}
		total += n
	}
	if int(total) != len(corpus.Messages)+len(more.Messages) {
		t.Errorf("loaded %d messages, want %d", total, len(corpus.Messages)+len(more.Messages))
	}
}

func TestCorpusLoadOtherSeparator(t *testing.T) {
	t.Parallel()
	d := StartDovecotT(t, DovecotOptions{Separator: ".", Prefix: "INBOX."})
	if err := d.AddUser("dot", "pw", 0); err != nil {
		t.Fatal(err)
	}
	c := d.LoginT(t, "dot", "pw")
	ctx := context.Background()
	corpus := GenerateCorpus(CorpusOptions{Seed: 3, Messages: 30})
	if len(corpus.Messages) != 30 {
		t.Fatalf("Messages: 30 gave %d messages", len(corpus.Messages))
	}

	// "Projekty/v1.2" cannot exist on a "." server.
	err := corpus.Load(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "v1.2") {
		t.Fatalf("Load into a '.' server: got %v, want an error about v1.2", err)
	}

	// Without that folder the rest maps to the server's names.
	sub := corpus.Without(FolderDotLeaf)
	if len(sub.Folders) != len(corpus.Folders)-1 || slices.Contains(sub.Folders, FolderDotLeaf) ||
		len(sub.Messages) >= len(corpus.Messages) {
		t.Fatalf("Without(%q): %d of %d folders, %d of %d messages", FolderDotLeaf,
			len(sub.Folders), len(corpus.Folders), len(sub.Messages), len(corpus.Messages))
	}
	if w := corpus.Without("Projekty"); slices.ContainsFunc(w.Folders, func(f string) bool { return strings.HasPrefix(f, "Projekty") }) {
		t.Errorf("Without(Projekty) kept %v", w.Folders)
	}
	if err := sub.Load(ctx, c); err != nil {
		t.Fatal(err)
	}
	names, err := ServerFolderNames(c, sub.Folders)
	if err != nil {
		t.Fatal(err)
	}
	if got := names[FolderArchive]; got != "INBOX.Archiv.2023" {
		t.Errorf("Archiv/2023 is %q on the server, want INBOX.Archiv.2023", got)
	}
	var total uint32
	for _, f := range sub.Folders {
		n, err := MessageCount(ctx, c, names[f])
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if int(total) != len(sub.Messages) {
		t.Errorf("loaded %d messages, want %d", total, len(sub.Messages))
	}
}
