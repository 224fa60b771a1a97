package engine

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
)

var systemFlags = map[string]imap.Flag{
	`\seen`: imap.FlagSeen, `\answered`: imap.FlagAnswered, `\flagged`: imap.FlagFlagged,
	`\draft`: imap.FlagDraft, `\deleted`: imap.FlagDeleted,
}

// flagFilter decides which source flags the destination can keep.
type flagFilter struct {
	anyKeyword bool            // PERMANENTFLAGS has \*
	allowed    map[string]bool // lower-cased flags the destination keeps
}

func newFlagFilter(permanent []imap.Flag) flagFilter {
	f := flagFilter{allowed: map[string]bool{}}
	if len(permanent) == 0 {
		// The server did not say: offer everything and let it decide.
		f.anyKeyword = true
	}
	for _, p := range permanent {
		if p == imap.FlagWildcard {
			f.anyKeyword = true
		}
		f.allowed[strings.ToLower(string(p))] = true
	}
	return f
}

// apply returns the flags to give the destination: \Recent never (only a
// server may set it), system flags in their canonical spelling, keywords
// only where the destination keeps them. The result is sorted.
func (f flagFilter) apply(flags []imap.Flag) []imap.Flag {
	var out []imap.Flag
	seen := map[string]bool{}
	for _, fl := range flags {
		k := strings.ToLower(string(fl))
		if k == `\recent` || seen[k] {
			continue
		}
		if sys, ok := systemFlags[k]; ok {
			if f.anyKeyword || f.allowed[k] || len(f.allowed) == 0 {
				out = append(out, sys)
				seen[k] = true
			}
			continue
		}
		if strings.HasPrefix(k, `\`) {
			continue // an unknown system flag cannot be set by a client
		}
		if f.anyKeyword || f.allowed[k] {
			out = append(out, fl)
			seen[k] = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// dropped returns the flags the destination does not keep (apply leaves
// them out), for the report.
func (f flagFilter) dropped(flags []imap.Flag) []string {
	if f.anyKeyword {
		return nil
	}
	var out []string
	for _, fl := range flags {
		k := strings.ToLower(string(fl))
		if k == `\recent` || f.allowed[k] {
			continue
		}
		if _, sys := systemFlags[k]; sys && len(f.allowed) == 0 {
			continue
		}
		if _, sys := systemFlags[k]; !sys && strings.HasPrefix(k, `\`) {
			continue // an extension's system flag no client may set
		}
		out = append(out, string(fl))
	}
	return out
}

// maxListed bounds lists in a folder's report that could grow with the
// mailbox (keywords).
const maxListed = 50

// flagDelta is the three-way merge: what changed on the source since base
// (the flags last given to the destination) is applied to the destination;
// whatever the user changed on the destination alone is left as it is.
func flagDelta(base, current []imap.Flag) (add, remove []imap.Flag) {
	b, c := flagSet(base), flagSet(current)
	for k, fl := range c {
		if _, ok := b[k]; !ok {
			add = append(add, fl)
		}
	}
	for k, fl := range b {
		if _, ok := c[k]; !ok {
			remove = append(remove, fl)
		}
	}
	sort.Slice(add, func(i, j int) bool { return add[i] < add[j] })
	sort.Slice(remove, func(i, j int) bool { return remove[i] < remove[j] })
	return add, remove
}

func flagSet(flags []imap.Flag) map[string]imap.Flag {
	m := make(map[string]imap.Flag, len(flags))
	for _, f := range flags {
		m[strings.ToLower(string(f))] = f
	}
	return m
}

func flagKey(flags []imap.Flag) string {
	s := make([]string, len(flags))
	for i, f := range flags {
		s[i] = strings.ToLower(string(f))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}
