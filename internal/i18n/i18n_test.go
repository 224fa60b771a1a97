package i18n

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPlural(t *testing.T) {
	c := NewCatalog("test", map[string]string{"folders": "%d folder|%d folders"},
		map[string]string{"folders": "%d složka|%d složky|%d složek"})
	cs, en := New(Czech), New(English)
	for n, want := range map[int]string{0: "0 složek", 1: "1 složka", 2: "2 složky", 4: "4 složky", 5: "5 složek",
		11: "11 složek", 21: "21 složek", 22: "22 složek", 1234: "1\u00a0234 složek"} {
		if got := c.N(cs, "folders", n); got != want {
			t.Errorf("Czech %d: %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int]string{0: "0 folders", 1: "1 folder", 2: "2 folders", 1234: "1,234 folders"} {
		if got := c.N(en, "folders", n); got != want {
			t.Errorf("English %d: %q, want %q", n, got, want)
		}
	}
}

func TestNumbersAndDates(t *testing.T) {
	cs, en := New(Czech), New(English)
	for _, c := range []struct {
		p    *Printer
		n    int64
		want string
	}{
		{cs, 1_677_722, "1,6 MB"}, {en, 1_677_722, "1.6 MB"}, {cs, 512, "512 B"}, {cs, 3 << 30, "3,0 GB"},
		{cs, 2047, "2,0 KB"}, {en, 0, "0 B"},
	} {
		if got := c.p.Bytes(c.n); got != c.want {
			t.Errorf("%s Bytes(%d) = %q, want %q", c.p.Lang, c.n, got, c.want)
		}
	}
	if got := cs.Sprintf("%d zpráv, %.1f MB/s", 12345, 2.25); got != "12\u00a0345 zpráv, 2,2 MB/s" && got != "12\u00a0345 zpráv, 2,3 MB/s" {
		t.Errorf("Czech numbers: %q", got)
	}
	at := time.Date(2026, 11, 7, 9, 4, 0, 0, time.UTC)
	if got := cs.Time(at); got != "7. 11. 2026 9:04" {
		t.Errorf("Czech time %q", got)
	}
	if got := en.Time(at); got != "2026-11-07 09:04" {
		t.Errorf("English time %q", got)
	}
	if got := cs.Date(at); got != "7. 11. 2026" {
		t.Errorf("Czech date %q", got)
	}
	if cs.Time(time.Time{}) != "" {
		t.Error("a zero time is written")
	}
}

func TestLanguageChoice(t *testing.T) {
	for header, want := range map[string]Lang{
		"cs-CZ,cs;q=0.9,en;q=0.8": Czech, "sk-SK,sk;q=0.9": Czech, "en-US,en;q=0.9,cs;q=0.8": English,
		"de-DE,de;q=0.9,cs;q=0.5": Czech, "de-DE": English, "": English, "*": English, "garbage;;q=x": English,
	} {
		if got := FromAcceptLanguage(header); got != want {
			t.Errorf("Accept-Language %q: %s, want %s", header, got, want)
		}
	}
	for env, want := range map[string]Lang{"cs_CZ.UTF-8": Czech, "C.UTF-8": English, "en_GB.UTF-8": English, "": English} {
		got := FromEnv(func(k string) string {
			if k == "LANG" {
				return env
			}
			return ""
		})
		if got != want {
			t.Errorf("LANG=%s: %s, want %s", env, got, want)
		}
	}
	if got := FromEnv(func(k string) string { return map[string]string{"LC_ALL": "cs_CZ.UTF-8", "LANG": "en_US.UTF-8"}[k] }); got != Czech {
		t.Errorf("LC_ALL wins over LANG: %s", got)
	}
}

func TestCheckFindsGaps(t *testing.T) {
	c := NewCatalog("test",
		map[string]string{"a": "%d of %s", "b": "only English", "p": "%d file|%d files", "ok": "Hello %s"},
		map[string]string{"a": "%s z %d", "p": "%d soubor|%d soubory", "ok": "Dobrý den, %s", "x": "jen česky"})
	got := strings.Join(c.Check(), "\n")
	for _, want := range []string{`"a" in cs has the verbs [%s %d]`, `"b" has no cs text`, `"p" in cs needs 3 plural forms`, `"x" has no English text`} {
		if !strings.Contains(got, want) {
			t.Errorf("Check misses %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"ok"`) {
		t.Errorf("Check flags a good text:\n%s", got)
	}
}

// A Message survives JSON with the kinds of its arguments and is written
// in each reader's language.
func TestMessage(t *testing.T) {
	c := NewCatalog("msgtest",
		map[string]string{"full": "%s is full: %s used of %d folders", "who": "the mailbox %s", "n": "%d message|%d messages"},
		map[string]string{"full": "%s je plná: %s zabráno z %d složek", "who": "schránka %s", "n": "%d zpráva|%d zprávy|%d zpráv"})
	m := c.M("full", c.M("who", "jana@firma.cz"), Size(1_677_722), 1234)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Message
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		l    Lang
		want string
	}{
		{English, "the mailbox jana@firma.cz is full: 1.6 MB used of 1,234 folders"},
		{Czech, "schránka jana@firma.cz je plná: 1,6 MB zabráno z 1\u00a0234 složek"},
	} {
		if got := back.In(New(c.l)); got != c.want {
			t.Errorf("%s: %q, want %q (json %s)", c.l, got, c.want, data)
		}
	}
	day := NewCatalog("daytest", map[string]string{"d": "expired on %s"}, map[string]string{"d": "platnost skončila %s"})
	data, _ = json.Marshal(day.M("d", Day(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC))))
	json.Unmarshal(data, &back)
	if got := back.In(New(Czech)); got != "platnost skončila 5. 3. 2026" {
		t.Errorf("date message: %q (json %s)", got, data)
	}
	clock := NewCatalog("clocktest", map[string]string{"c": "continuing at %s"}, map[string]string{"c": "pokračujeme v %s"})
	at := time.Date(2026, 3, 5, 9, 7, 0, 0, time.Local)
	data, _ = json.Marshal(clock.M("c", Clock(at)))
	json.Unmarshal(data, &back)
	if got := back.In(New(Czech)); got != "pokračujeme v 9:07" {
		t.Errorf("clock message: %q (json %s)", got, data)
	}
	if got := back.In(New(English)); got != "continuing at 09:07" {
		t.Errorf("clock message: %q (json %s)", got, data)
	}
	n := c.M("n", Count(3))
	data, _ = json.Marshal(n)
	json.Unmarshal(data, &back)
	if got := back.In(New(Czech)); got != "3 zprávy" {
		t.Errorf("plural message: %q (json %s)", got, data)
	}
	if _, err := json.Marshal(c.M("who", 1.5)); err == nil {
		t.Error("a float argument was stored")
	}
	if (Message{}).In(New(Czech)) != "" || !(Message{}).IsZero() {
		t.Error("the zero message writes something")
	}
}

// A sentence an older version stored as English text reads as it was;
// the zero message is stored as "".
func TestMessageLiteral(t *testing.T) {
	var m Message
	if err := json.Unmarshal([]byte(`"the folder was renamed"`), &m); err != nil || m.In(New(Czech)) != "the folder was renamed" || m.IsZero() {
		t.Errorf("legacy text: %+v %v", m, err)
	}
	if data, _ := json.Marshal(Message{}); string(data) != `""` {
		t.Errorf("zero message stored as %s", data)
	}
}
