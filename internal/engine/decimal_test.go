package engine

import (
	"errors"
	"math/big"
	"strings"
	"testing"
)

func mustDec(t *testing.T, s string) Decimal {
	t.Helper()
	d, err := ParseDecimal(s)
	if err != nil {
		t.Fatalf("ParseDecimal(%q): %v", s, err)
	}
	return d
}

func TestParseDecimal(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1.10", "1.10"},
		{"-0.25", "-0.25"},
		{".5", "0.5"},
		{"1e5", "100000"},
		{"12.30E-1", "1.230"},
		{"79228162514264337593543950335", "79228162514264337593543950335"},
		{"-79228162514264337593543950335", "-79228162514264337593543950335"},
		{"0.00000000000000000000000000001", "0.0000000000000000000000000000"}, // 29th place rounds half to even
		{"0.00000000000000000000000000015", "0.0000000000000000000000000002"},
		{"0.00000000000000000000000000025", "0.0000000000000000000000000002"},
		{"9.2345678901234567890123456789", "9.234567890123456789012345679"}, // 96 bits: one digit dropped
		{"  +7 ", "7"},
	} {
		if got := mustDec(t, c.in).String(); got != c.want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "-", ".", "1.2.3", "abc", "1e", "1e99999", "0x10", "1_000"} {
		if _, err := ParseDecimal(bad); err == nil {
			t.Errorf("ParseDecimal(%q) succeeded", bad)
		}
	}
	if _, err := ParseDecimal("79228162514264337593543950336"); !errors.Is(err, ErrDecimalOverflow) {
		t.Errorf("2^96 parsed: %v", err)
	}
}

func TestDecimalArithmetic(t *testing.T) {
	bin := func(op string, a, b string) string {
		x, y := mustDec(t, a), mustDec(t, b)
		var (
			d   Decimal
			err error
			ok  = true
		)
		switch op {
		case "+":
			d, err = x.Add(y)
		case "-":
			d, err = x.Sub(y)
		case "*":
			d, err = x.Mul(y)
		case "/":
			d, ok, err = x.Div(y)
		case "%":
			d, ok, err = x.Mod(y)
		}
		if err != nil {
			return "error: " + err.Error()
		}
		if !ok {
			return "null"
		}
		return d.String()
	}
	for _, c := range []struct{ op, a, b, want string }{
		{"+", "0.1", "0.2", "0.3"},
		{"+", "1.10", "2.205", "3.305"},
		{"-", "1", "0.001", "0.999"},
		{"*", "2", "1.50", "3.00"},
		{"*", "0.1", "0.1", "0.01"},
		{"/", "1", "3", "0.3333333333333333333333333333"},
		{"/", "2", "3", "0.6666666666666666666666666667"},
		{"/", "1.00", "2", "0.50"},
		{"/", "10", "4", "2.5"},
		{"/", "-1", "3", "-0.3333333333333333333333333333"},
		{"/", "1", "0", "null"},
		{"%", "10", "3", "1"},
		{"%", "7.5", "2", "1.5"},
		{"%", "1", "0", "null"},
		{"+", "79228162514264337593543950335", "1", "error: " + ErrDecimalOverflow.Error()},
		{"*", "79228162514264337593543950335", "0.5", "39614081257132168796771975168"},
		{"*", "0.0000000000000001", "0.0000000000000001", "0.0000000000000000000000000000"},
	} {
		if got := bin(c.op, c.a, c.b); got != c.want {
			t.Errorf("%s %s %s = %s, want %s", c.a, c.op, c.b, got, c.want)
		}
	}
}

func TestDecimalRoundCompareConvert(t *testing.T) {
	for _, c := range []struct {
		in     string
		places int
		want   string
	}{
		{"2.345", 2, "2.35"}, {"-2.345", 2, "-2.35"}, {"2.5", 0, "3"}, {"1234.5", -2, "1200"}, {"1.2", 5, "1.2"},
	} {
		d, err := mustDec(t, c.in).Round(c.places)
		if err != nil || d.String() != c.want {
			t.Errorf("round(%s, %d) = %s, %v; want %s", c.in, c.places, d, err, c.want)
		}
	}
	if mustDec(t, "1.0").Cmp(mustDec(t, "1.000")) != 0 || mustDec(t, "-1").Cmp(mustDec(t, "0.5")) != -1 {
		t.Error("Cmp")
	}
	if d, ok := DecimalFromFloat(0.1 + 0.2); !ok || d.String() != "0.3" {
		t.Errorf("DecimalFromFloat(0.1+0.2) = %s", d)
	}
	if _, ok := DecimalFromFloat(1e30); ok {
		t.Error("1e30 converted to decimal")
	}
	if n, ok := mustDec(t, "-7.9").Int64(); !ok || n != -7 {
		t.Errorf("Int64(-7.9) = %d", n)
	}
	if f := mustDec(t, "0.3").Float64(); f != 0.3 {
		t.Errorf("Float64 = %v", f)
	}
}

// FuzzParseDecimal checks that decimal text from queries and data
// (todecimal of a string column) never panics, that what parses is in range
// and that its formatted text parses back to the same value.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"1.10", "-0.25", "1e5", "79228162514264337593543950335", "0.00000000000000000000000000015", ".", "1e-99", "9e28"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDecimal(s)
		if err != nil {
			return
		}
		if d.scale < 0 || d.scale > decMaxScale || new(big.Int).Abs(d.c).Cmp(decMaxCoef) > 0 {
			t.Fatalf("%q parsed out of range: %s (scale %d)", s, d, d.scale)
		}
		text := d.String()
		back, err := ParseDecimal(text)
		if err != nil || back.String() != text {
			t.Fatalf("%q: %s does not round-trip (%s, %v)", s, text, back, err)
		}
		if strings.ContainsAny(text, "eE") {
			t.Fatalf("%q formatted with an exponent: %s", s, text)
		}
	})
}
