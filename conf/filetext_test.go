package conf

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/lvsd/lvsd/internal/genconf"
)

// fileTextStrings lists the strings reachable from v whose bytes lie in
// text: each keeps the whole text alive.
func fileTextStrings(v reflect.Value, text string, path string, out *[]string, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if len(s) == 0 || len(text) == 0 {
			return
		}
		p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(text)))
		if p >= lo && p < lo+uintptr(len(text)) {
			*out = append(*out, path+"="+s)
		}
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		fileTextStrings(v.Elem(), text, path, out, seen)
	case reflect.Interface:
		if !v.IsNil() {
			fileTextStrings(v.Elem(), text, path, out, seen)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fileTextStrings(v.Field(i), text, path+"."+v.Type().Field(i).Name, out, seen)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			fileTextStrings(v.Index(i), text, path+"[]", out, seen)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			fileTextStrings(it.Key(), text, path+"{k}", out, seen)
			fileTextStrings(it.Value(), text, path+"{}", out, seen)
		}
	}
}

// TestModelKeepsNoFileText: the model of a large director's file (virtual
// and real servers with their checkers, as genconf writes it) holds no
// string of the file's text (the lexer's tokens share it), so that the
// text, 12 MB for a 660,000-line file, is garbage once the file is parsed
// (issue 17). Elsewhere (instance and script names, routes' words) the
// model still shares the text: a small file's.
func TestModelKeepsNoFileText(t *testing.T) {
	var gen strings.Builder
	if err := genconf.Write(&gen, 3, 2); err != nil {
		t.Fatal(err)
	}
	text := gen.String() + `
virtual_server 192.0.2.1 80 {
    lb_algo mh
    lb_kind DR
    protocol UDP
    persistence_engine sip
    real_server 198.51.100.1 80 {
        HTTP_GET {
            url {
                path /
            }
        }
    }
}
`
	cfg, diags := Parse("gen.conf", text, Options{ConfigID: "test"})
	if len(cfg.VirtualServers) != 4 {
		t.Fatalf("%d virtual servers: %v", len(cfg.VirtualServers), diags)
	}
	var found []string
	fileTextStrings(reflect.ValueOf(cfg), text, "Config", &found, map[uintptr]bool{})
	if len(found) > 0 {
		t.Errorf("%d strings of the file's text kept, e.g. %s", len(found), strings.Join(found[:min(len(found), 8)], " "))
	}
}
