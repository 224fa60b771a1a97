package i18n

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Message is a sentence not yet written in a language: a text of a
// registered catalog and its arguments. It is stored, queued and passed
// around as data, and written in the reader's language where a page, a
// mail, an API answer or a report is made — so that one task's failure
// reads in Czech to one customer and in English to another.
type Message struct {
	Catalog string `json:"c"`
	Key     string `json:"k"`
	// Args are strings, integers, Size, Day, Count or nested Messages; they
	// keep their kind through JSON.
	Args []any `json:"a,omitempty"`
	// Literal is a sentence stored by an older version as plain English
	// text (a JSON string where a Message is now); it is shown as it is.
	Literal string `json:"-"`
}

// Literal makes a Message of a sentence that exists in one form only.
func Literal(s string) Message { return Message{Literal: s} }

// Size is a number of bytes, written as "1.6 MB" or "1,6 MB".
type Size int64

// Day is a date, written as "2026-11-27" or "27. 11. 2026".
type Day time.Time

// Clock is a time of day, written as "09:05" or "9:05" in the server's
// time zone: when something happens later today ("continuing at 14:05").
type Clock time.Time

// Count is a number that a plural text's forms are chosen by: a Message
// whose text has forms ("%d folder|%d folders") takes it as its first
// argument.
type Count int

var (
	registryMu sync.RWMutex
	registry   = map[string]*Catalog{}
)

// Register makes a catalog's texts usable as Messages; packages register
// theirs when they start (NewCatalog does it).
func register(c *Catalog) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[c.name] = c
}

// M makes a Message of one of the catalog's texts.
func (c *Catalog) M(key string, args ...any) Message {
	return Message{Catalog: c.name, Key: key, Args: args}
}

// IsZero tells a Message that was never set.
func (m Message) IsZero() bool { return m.Key == "" && m.Literal == "" }

// In writes the message in the printer's language.
func (m Message) In(p *Printer) string {
	if m.Key == "" {
		return m.Literal
	}
	registryMu.RLock()
	c := registry[m.Catalog]
	registryMu.RUnlock()
	if c == nil {
		return "[" + m.Catalog + ":" + m.Key + "]"
	}
	args := make([]any, len(m.Args))
	var count *int
	for i, a := range m.Args {
		switch a := a.(type) {
		case Size:
			args[i] = p.Bytes(int64(a))
		case Day:
			args[i] = p.Date(time.Time(a))
		case Clock:
			args[i] = p.Clock(time.Time(a))
		case Message:
			args[i] = a.In(p)
		case Count:
			n := int(a)
			if count == nil {
				count = &n
			}
			args[i] = n
		default:
			args[i] = a
		}
	}
	text := c.text(p.Lang, m.Key)
	if count != nil {
		text = p.form(text, *count)
	}
	if len(args) == 0 {
		return text
	}
	return p.Sprintf(text, args...)
}

// String is the message in English, for logs.
func (m Message) String() string { return m.In(New(English)) }

// jsonArg is an argument's kind on the wire.
type jsonArg struct {
	Size  *int64     `json:"size,omitempty"`
	Day   *time.Time `json:"day,omitempty"`
	Clock *time.Time `json:"clock,omitempty"`
	Count *int       `json:"count,omitempty"`
	Msg   *Message   `json:"msg,omitempty"`
}

// MarshalJSON keeps the kinds of the arguments.
func (m Message) MarshalJSON() ([]byte, error) {
	if m.Key == "" {
		return json.Marshal(m.Literal)
	}
	type plain Message
	out := plain(m)
	out.Args = make([]any, len(m.Args))
	for i, a := range m.Args {
		switch a := a.(type) {
		case Size:
			n := int64(a)
			out.Args[i] = jsonArg{Size: &n}
		case Count:
			n := int(a)
			out.Args[i] = jsonArg{Count: &n}
		case Day:
			d := time.Time(a)
			out.Args[i] = jsonArg{Day: &d}
		case Clock:
			d := time.Time(a)
			out.Args[i] = jsonArg{Clock: &d}
		case Message:
			out.Args[i] = jsonArg{Msg: &a}
		case string, int, int64, uint32, int32:
			out.Args[i] = a
		default:
			return nil, fmt.Errorf("message %s: argument %d is a %T, which cannot be stored", m.Key, i, a)
		}
	}
	if len(out.Args) == 0 {
		out.Args = nil
	}
	return json.Marshal(out)
}

// UnmarshalJSON restores the kinds of the arguments: whole numbers come
// back as int64.
func (m *Message) UnmarshalJSON(data []byte) error {
	if d := bytes.TrimSpace(data); len(d) > 0 && d[0] == '"' {
		*m = Message{}
		return json.Unmarshal(d, &m.Literal)
	}
	var raw struct {
		Catalog string            `json:"c"`
		Key     string            `json:"k"`
		Args    []json.RawMessage `json:"a"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*m = Message{Catalog: raw.Catalog, Key: raw.Key}
	for _, a := range raw.Args {
		a = bytes.TrimSpace(a)
		var v any
		switch {
		case len(a) > 0 && a[0] == '{':
			var ja jsonArg
			if err := json.Unmarshal(a, &ja); err != nil {
				return err
			}
			switch {
			case ja.Size != nil:
				v = Size(*ja.Size)
			case ja.Count != nil:
				v = Count(*ja.Count)
			case ja.Day != nil:
				v = Day(*ja.Day)
			case ja.Clock != nil:
				v = Clock(ja.Clock.Local())
			case ja.Msg != nil:
				v = *ja.Msg
			}
		case len(a) > 0 && a[0] == '"':
			var s string
			if err := json.Unmarshal(a, &s); err != nil {
				return err
			}
			v = s
		default:
			var n int64
			if err := json.Unmarshal(a, &n); err != nil {
				return fmt.Errorf("message %s: argument %s: %w", raw.Key, a, err)
			}
			v = n
		}
		m.Args = append(m.Args, v)
	}
	return nil
}
