package bulk

// textsCS is texts in Czech: the same keys, the same verbs in the same order.
var textsCS = map[string]string{
	"line":                   "řádek %d: %s",
	"no_password":            "u adresy %s chybí heslo: napište heslo za adresu a oddělte ho mezerou",
	"login.empty":            "přihlašovací jméno je prázdné",
	"login.no_domain":        "přihlašovací jméno %q nemá doménu: napište celou adresu, např. %s@vasedomena.cz",
	"login.no_name":          "přihlašovací jméno %q nemá před zavináčem (@) žádné jméno",
	"login.not_domain":       "přihlašovací jméno %q: %q není název domény",
	"dest_login.empty":       "cílové přihlašovací jméno je prázdné",
	"dest_login.no_domain":   "cílové přihlašovací jméno %q nemá doménu: napište celou adresu, např. %s@vasedomena.cz",
	"dest_login.no_name":     "cílové přihlašovací jméno %q nemá před zavináčem (@) žádné jméno",
	"dest_login.not_domain":  "cílové přihlašovací jméno %q: %q není název domény",
	"csv.no_source_login":    "přihlašovací jméno k původní schránce je prázdné",
	"csv.no_source_password": "u přihlašovacího jména %s chybí heslo k původní schránce",
	"csv.no_dest_password":   "u cílové schránky %s chybí heslo",
	"csv.invalid":            "řádek není platný zápis CSV (zkontrolujte uvozovky)",
	"csv.columns":            "počet sloupců je %d, očekávají se 4: %s",
	"duplicate.source":       "přihlašovací jméno %s je už uvedeno na řádku %d",
	"duplicate.dest":         "cílová schránka %s je už použita na řádku %d",
	"new.login.no_domain":    "přihlašovací jméno %q nemá doménu: napište celé přihlašovací jméno k původní schránce, např. %s@puvodni-domena.cz",
	"new.no_password":        "u přihlašovacího jména %s chybí heslo: napište heslo k původní schránce za přihlašovací jméno a oddělte ho mezerou",
	"new.too_many_parts":     "%s: řádek má více než tři části (přihlašovací jméno, původní heslo, nové heslo); pokud heslo obsahuje mezery, oddělte části tabulátorem",
}
