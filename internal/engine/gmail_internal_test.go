package engine

import "testing"

func TestGmailKeyword(t *testing.T) {
	for label, want := range map[string]string{
		"Work": "Work", "Work/Clients": "Work/Clients", "Muy Importante": "Muy_Importante",
		"Práce": "Pr&AOE-ce", `a(b)"c"\d]e%f*g{h`: "a_b__c__d_e_f_g_h", "R&D": "R&-D",
	} {
		if got := gmailKeyword(label); got != want {
			t.Errorf("gmailKeyword(%q) = %q, want %q", label, got, want)
		}
	}
}
