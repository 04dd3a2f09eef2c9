package engine

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"custos/internal/kql"
	"custos/internal/store"
)

// Decimal is a value of KQL's decimal type, modelled on .NET's
// System.Decimal: a signed integer coefficient of at most 96 bits scaled by
// 10^-scale, 0 <= scale <= 28. The scale is kept (decimal(1.10) has scale 2
// and prints "1.10"), as .NET keeps it.
//
// A decimal column travels through the engine as a store.Vector of
// TypeDecimal whose Real holds the nearest float64 (what storage, the
// result encoders and every real-valued kernel read) and whose Str, when it
// has one entry per row, holds the exact text; decAt prefers Str and falls
// back to Real, so operators that do not carry Str keep the value to
// float64 precision (15 significant digits round-trip exactly).
type Decimal struct {
	c     *big.Int // coefficient, sign included; never nil
	scale int
}

// Decimal limits, as in .NET.
const decMaxScale = 28

var (
	decMaxCoef = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 96), big.NewInt(1))
	bigTen     = big.NewInt(10)
)

// ErrDecimalOverflow is returned when a decimal result is outside
// ±79,228,162,514,264,337,593,543,950,335.
var ErrDecimalOverflow = errors.New("decimal overflow: the value is outside the range of decimal (±79228162514264337593543950335)")

var pow10Cache [2*decMaxScale + 30]*big.Int

func pow10(n int) *big.Int {
	if n < len(pow10Cache) {
		if p := pow10Cache[n]; p != nil {
			return p
		}
		p := new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
		pow10Cache[n] = p
		return p
	}
	return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
}

// DecimalFromInt returns the decimal of an integer.
func DecimalFromInt(x int64) Decimal { return Decimal{c: big.NewInt(x)} }

// ParseDecimal parses decimal text: an optional sign, digits with an
// optional decimal point, and an optional exponent ("1.5", "-.25", "1e5",
// "12.30E-1"). Digits beyond the 28th decimal place, or beyond 96 bits of
// coefficient, are rounded half to even; a value too large is
// ErrDecimalOverflow.
func ParseDecimal(s string) (Decimal, error) {
	s = strings.TrimSpace(s)
	orig := s
	bad := func() (Decimal, error) { return Decimal{}, fmt.Errorf("invalid decimal %q", orig) }
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return bad()
		}
		exp = e
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	if intPart == "" && frac == "" {
		return bad()
	}
	digits := intPart + frac
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return bad()
		}
	}
	// Leading zeros do not count towards precision.
	digits = strings.TrimLeft(digits, "0")
	if len(digits) > 200 {
		return Decimal{}, ErrDecimalOverflow
	}
	c := new(big.Int)
	if digits != "" {
		c.SetString(digits, 10)
	}
	scale := len(frac) - exp
	if scale < 0 {
		if -scale > 60 && c.Sign() != 0 {
			return Decimal{}, ErrDecimalOverflow
		}
		c.Mul(c, pow10(-scale))
		scale = 0
	}
	if neg {
		c.Neg(c)
	}
	return decFit(c, scale)
}

// decFit rounds c·10^-scale (half to even) until it has at most 28 decimal
// places and a 96-bit coefficient.
func decFit(c *big.Int, scale int) (Decimal, error) {
	if scale > decMaxScale {
		c = roundHalfEven(c, scale-decMaxScale)
		scale = decMaxScale
	}
	for new(big.Int).Abs(c).Cmp(decMaxCoef) > 0 {
		if scale == 0 {
			return Decimal{}, ErrDecimalOverflow
		}
		c = roundHalfEven(c, 1)
		scale--
	}
	return Decimal{c: c, scale: scale}, nil
}

// roundHalfEven divides c by 10^k, rounding half to even.
func roundHalfEven(c *big.Int, k int) *big.Int {
	if k <= 0 {
		return c
	}
	d := pow10(k)
	q, r := new(big.Int).QuoRem(c, d, new(big.Int))
	r2 := new(big.Int).Abs(r)
	r2.Lsh(r2, 1)
	switch r2.Cmp(d) {
	case 1:
		q.Add(q, big.NewInt(int64(c.Sign())))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(int64(c.Sign())))
		}
	}
	return q
}

// roundHalfAway divides c by 10^k, rounding half away from zero.
func roundHalfAway(c *big.Int, k int) *big.Int {
	if k <= 0 {
		return c
	}
	d := pow10(k)
	q, r := new(big.Int).QuoRem(c, d, new(big.Int))
	r.Abs(r).Lsh(r, 1)
	if r.Cmp(d) >= 0 {
		q.Add(q, big.NewInt(int64(c.Sign())))
	}
	return q
}

// String formats d as .NET does: the digits with the decimal point at the
// scale, trailing zeros kept, no exponent.
func (d Decimal) String() string {
	if d.c == nil {
		return "0"
	}
	s := new(big.Int).Abs(d.c).String()
	neg := d.c.Sign() < 0
	if d.scale > 0 {
		if len(s) <= d.scale {
			s = strings.Repeat("0", d.scale-len(s)+1) + s
		}
		s = s[:len(s)-d.scale] + "." + s[len(s)-d.scale:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// Float64 returns the nearest float64.
func (d Decimal) Float64() float64 {
	f, err := strconv.ParseFloat(d.String(), 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// DecimalFromFloat converts a real as .NET's (decimal)double does: rounded
// to 15 significant digits, trailing zeros dropped. NaN and infinities have
// no decimal (ok false), nor do values beyond the decimal range.
func DecimalFromFloat(f float64) (Decimal, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Decimal{}, false
	}
	d, err := ParseDecimal(strconv.FormatFloat(f, 'e', 14, 64))
	if err != nil {
		return Decimal{}, false
	}
	return d.trimZeros(0), true
}

// trimZeros drops trailing fractional zeros down to scale minScale.
func (d Decimal) trimZeros(minScale int) Decimal {
	c, s := new(big.Int).Set(d.c), d.scale
	r := new(big.Int)
	q := new(big.Int)
	for s > minScale {
		q.QuoRem(c, bigTen, r)
		if r.Sign() != 0 {
			break
		}
		c.Set(q)
		s--
	}
	return Decimal{c: c, scale: s}
}

// align returns the coefficients of a and b at their common (larger) scale.
func align(a, b Decimal) (x, y *big.Int, scale int) {
	switch {
	case a.scale == b.scale:
		return a.c, b.c, a.scale
	case a.scale < b.scale:
		return new(big.Int).Mul(a.c, pow10(b.scale-a.scale)), b.c, b.scale
	default:
		return a.c, new(big.Int).Mul(b.c, pow10(a.scale-b.scale)), a.scale
	}
}

// Cmp compares a and b numerically (-1, 0, +1); 1.0 equals 1.00.
func (a Decimal) Cmp(b Decimal) int {
	x, y, _ := align(a, b)
	return x.Cmp(y)
}

// Add returns a + b.
func (a Decimal) Add(b Decimal) (Decimal, error) {
	x, y, s := align(a, b)
	return decFit(new(big.Int).Add(x, y), s)
}

// Sub returns a - b.
func (a Decimal) Sub(b Decimal) (Decimal, error) {
	x, y, s := align(a, b)
	return decFit(new(big.Int).Sub(x, y), s)
}

// Mul returns a × b; the scales add, then the result is rounded to fit.
func (a Decimal) Mul(b Decimal) (Decimal, error) {
	return decFit(new(big.Int).Mul(a.c, b.c), a.scale+b.scale)
}

// Neg returns -a.
func (a Decimal) Neg() Decimal { return Decimal{c: new(big.Int).Neg(a.c), scale: a.scale} }

// Div returns a ÷ b as .NET computes it: exact when the quotient has a
// finite expansion that fits (keeping at least the scale a.scale-b.scale),
// otherwise rounded half to even at the most digits that fit (at most 28
// decimal places). ok is false for division by zero.
func (a Decimal) Div(b Decimal) (d Decimal, ok bool, err error) {
	if b.c.Sign() == 0 {
		return Decimal{}, false, nil
	}
	num := new(big.Int).Set(a.c)
	den := new(big.Int).Set(b.c)
	scale := a.scale - b.scale
	if scale < 0 {
		num.Mul(num, pow10(-scale))
		scale = 0
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Abs(q).Cmp(decMaxCoef) > 0 {
		return Decimal{}, true, ErrDecimalOverflow
	}
	// Extend the quotient one digit at a time while it is inexact and fits.
	for r.Sign() != 0 && scale < decMaxScale {
		q10 := new(big.Int).Mul(q, bigTen)
		r10 := new(big.Int).Mul(r, bigTen)
		dq, dr := new(big.Int).QuoRem(r10, den, new(big.Int))
		next := q10.Add(q10, dq)
		if new(big.Int).Abs(next).Cmp(decMaxCoef) > 0 {
			break
		}
		q, r = next, dr
		scale++
	}
	if r.Sign() != 0 {
		// Round the last digit half to even by comparing 2|r| with |den|.
		r2 := new(big.Int).Abs(r)
		r2.Lsh(r2, 1)
		c := r2.Cmp(new(big.Int).Abs(den))
		sign := int64(q.Sign())
		if sign == 0 {
			sign = int64(num.Sign() * den.Sign())
		}
		if c > 0 || (c == 0 && q.Bit(0) == 1) {
			q.Add(q, big.NewInt(sign))
		}
	}
	d, err = decFit(q, scale)
	return d, true, err
}

// Mod returns a % b with the same sign rule as Custos's long modulo (a
// negative remainder is moved into the divisor's range, so a positive b
// gives a non-negative result); ok is false for a zero divisor.
func (a Decimal) Mod(b Decimal) (Decimal, bool, error) {
	if b.c.Sign() == 0 {
		return Decimal{}, false, nil
	}
	x, y, s := align(a, b)
	m := new(big.Int).Rem(x, y) // sign of x, as .NET's %
	if m.Sign() < 0 {
		if y.Sign() < 0 {
			m.Sub(m, y)
		} else {
			m.Add(m, y)
		}
	}
	d, err := decFit(m, s)
	return d, true, err
}

// Round rounds a to places decimal places (negative places round to tens,
// hundreds...), half away from zero as Kusto's round() does.
func (a Decimal) Round(places int) (Decimal, error) {
	if places >= a.scale {
		return a, nil
	}
	if places < -decMaxScale-29 {
		return Decimal{c: new(big.Int)}, nil
	}
	c := roundHalfAway(a.c, a.scale-places)
	if places < 0 {
		c.Mul(c, pow10(-places))
		places = 0
	}
	return decFit(c, places)
}

// Int64 returns a truncated toward zero; ok is false outside the long range.
func (a Decimal) Int64() (int64, bool) {
	q := new(big.Int).Quo(a.c, pow10(a.scale))
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// decimalValue returns the decimal of a constant Value of type decimal (its
// Str holds the literal digits when it came from decimal(...)).
func decimalValue(v kql.Value) (Decimal, bool) {
	if v.Null {
		return Decimal{}, false
	}
	if v.Str != "" {
		if d, err := ParseDecimal(v.Str); err == nil {
			return d, true
		}
	}
	return decimalFromReal(v.Real)
}

// decimalFromReal recovers a decimal from its float64 image: the shortest
// text that round-trips, so every value of up to 15 significant digits comes
// back exactly.
func decimalFromReal(f float64) (Decimal, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Decimal{}, false
	}
	d, err := ParseDecimal(strconv.FormatFloat(f, 'e', -1, 64))
	if err != nil {
		return Decimal{}, false
	}
	return d.trimZeros(0), true
}

// decAt returns row i of a decimal vector; ok is false for a null.
func decAt(v *store.Vector, i int) (Decimal, bool) {
	if v.IsNull(i) {
		return Decimal{}, false
	}
	if len(v.Str) == len(v.Real) && v.Str[i] != "" {
		if d, err := ParseDecimal(v.Str[i]); err == nil {
			return d, true
		}
	}
	return decimalFromReal(v.Real[i])
}

// newDecVector returns a decimal vector of n rows carrying exact text.
func newDecVector(n int) *store.Vector {
	return &store.Vector{Type: store.TypeDecimal, Real: make([]float64, n), Str: make([]string, n)}
}

// setDec stores d in row i of a vector made by newDecVector.
func setDec(v *store.Vector, i int, d Decimal) {
	v.Real[i] = d.Float64()
	v.Str[i] = d.String()
}

// setNullAt marks row i of v null.
func setNullAt(v *store.Vector, i, n int) {
	if v.Nulls == nil {
		v.Nulls = make([]bool, n)
	}
	v.Nulls[i] = true
}

// toDecimalVector converts any scalar vector to decimal (todecimal and the
// binder's casts): integers exactly, reals as .NET converts them (15
// significant digits), strings parsed; what does not convert is null.
func toDecimalVector(x *store.Vector, n int) *store.Vector {
	out := newDecVector(n)
	for i := range n {
		if x.IsNull(i) {
			setNullAt(out, i, n)
			continue
		}
		var (
			d  Decimal
			ok = true
		)
		switch {
		case x.Type == store.TypeDecimal:
			d, ok = decAt(x, i)
		case x.Type == store.TypeBool:
			d = DecimalFromInt(boolInt(x.Bool[i]))
		case x.Type == store.TypeDatetime:
			d = DecimalFromInt(x.Int[i] + kustoEpochOffset)
		case kql.IsIntHeld(x.Type):
			d = DecimalFromInt(x.Int[i])
		case kql.IsRealHeld(x.Type):
			d, ok = DecimalFromFloat(x.Real[i])
		default:
			s := x.Str[i]
			if x.Type == store.TypeDynamic {
				s, ok = dynScalarText(s)
			}
			if ok {
				var err error
				d, err = ParseDecimal(s)
				ok = err == nil
			}
		}
		if !ok {
			setNullAt(out, i, n)
			continue
		}
		setDec(out, i, d)
	}
	return out
}

// decArith evaluates + - * / % on decimal vectors. Division or modulo by
// zero is null; a result outside the decimal range fails the query, as the
// .NET arithmetic Kusto uses raises an overflow.
func decArith(op kql.FuncID, x, y *store.Vector, n int) (*store.Vector, error) {
	out := newDecVector(n)
	for i := range n {
		a, aok := decAt(x, i)
		b, bok := decAt(y, i)
		if !aok || !bok {
			setNullAt(out, i, n)
			continue
		}
		var (
			d   Decimal
			err error
			ok  = true
		)
		switch op {
		case kql.OpAdd:
			d, err = a.Add(b)
		case kql.OpSub:
			d, err = a.Sub(b)
		case kql.OpMul:
			d, err = a.Mul(b)
		case kql.OpDiv:
			d, ok, err = a.Div(b)
		case kql.OpMod:
			d, ok, err = a.Mod(b)
		default:
			return nil, fmt.Errorf("BUG: decimal operator %v", op)
		}
		if err != nil {
			return nil, &ExecError{Msg: fmt.Sprintf("%s %s %s: %v", a, opText(op), b, err)}
		}
		if !ok {
			setNullAt(out, i, n)
			continue
		}
		setDec(out, i, d)
	}
	return out, nil
}

func opText(op kql.FuncID) string {
	switch op {
	case kql.OpAdd:
		return "+"
	case kql.OpSub:
		return "-"
	case kql.OpMul:
		return "*"
	case kql.OpDiv:
		return "/"
	}
	return "%"
}

// decCompare compares decimal vectors exactly.
func decCompare(op kql.FuncID, x, y *store.Vector, n int) *store.Vector {
	out := newVector(store.TypeBool, n)
	for i := range n {
		a, aok := decAt(x, i)
		b, bok := decAt(y, i)
		if !aok || !bok {
			setNullAt(out, i, n)
			continue
		}
		c := a.Cmp(b)
		switch op {
		case kql.OpEq:
			out.Bool[i] = c == 0
		case kql.OpNe:
			out.Bool[i] = c != 0
		case kql.OpLt:
			out.Bool[i] = c < 0
		case kql.OpLe:
			out.Bool[i] = c <= 0
		case kql.OpGt:
			out.Bool[i] = c > 0
		case kql.OpGe:
			out.Bool[i] = c >= 0
		}
	}
	return out
}

// decRound evaluates round(x [, places]) on a decimal vector.
func decRound(x, places *store.Vector, n int) (*store.Vector, error) {
	out := newDecVector(n)
	for i := range n {
		a, ok := decAt(x, i)
		if !ok || (places != nil && places.IsNull(i)) {
			setNullAt(out, i, n)
			continue
		}
		p := int64(0)
		if places != nil {
			p = places.Int[i]
		}
		p = max(min(p, 100), -100)
		d, err := a.Round(int(p))
		if err != nil {
			return nil, &ExecError{Msg: fmt.Sprintf("round(%s, %d): %v", a, p, err)}
		}
		setDec(out, i, d)
	}
	return out, nil
}

// decTieCompare compares rows i and j of a decimal vector exactly. Rounding
// to the nearest float64 keeps order, so callers compare Real first and use
// this only to break a tie between equal float64s.
func decTieCompare(v *store.Vector, i, j int) int {
	a, aok := decAt(v, i)
	b, bok := decAt(v, j)
	if !aok || !bok {
		return 0
	}
	return a.Cmp(b)
}

// decKey returns a key for row i (not null) of a decimal vector that is
// equal for numerically equal decimals, whatever their scale (1.0 and
// 1.00) and whether the row carries exact text or only its float64: the
// canonical digits with trailing fractional zeros dropped. Grouping and
// join keys use it instead of the float64's bits, which would merge
// distinct decimals that round to the same float64.
func decKey(v *store.Vector, i int) string {
	if s := decTextAt(v, i); s != "" && kql.IsDecimalText(s) {
		if strings.IndexByte(s, '.') >= 0 {
			s = strings.TrimRight(s, "0")
			s = strings.TrimSuffix(s, ".")
		}
		if s == "-0" {
			s = "0"
		}
		return s
	}
	d, ok := decimalFromReal(v.Real[i])
	if !ok {
		return "f" + strconv.FormatUint(math.Float64bits(v.Real[i]), 16)
	}
	return d.String()
}

// decCompareRows compares row i of decimal vector a with row j of decimal
// vector b exactly (nulls compare equal to anything; callers skip them).
func decCompareRows(a *store.Vector, i int, b *store.Vector, j int) int {
	x, xok := decAt(a, i)
	y, yok := decAt(b, j)
	if !xok || !yok {
		return 0
	}
	return x.Cmp(y)
}

// decValueText returns the canonical exact text of a decimal Value (a
// literal's Str is the digits as written, "1e5" or 30 decimal places), or
// "" for a null or a Value that carries no text.
func decValueText(val kql.Value) string {
	if val.Null || val.Type != store.TypeDecimal || val.Str == "" {
		return ""
	}
	if d, err := ParseDecimal(val.Str); err == nil {
		return d.String()
	}
	return ""
}

// Floor returns the largest integer not above a, at scale 0 as .NET's
// Math.Floor(decimal) does.
func (a Decimal) Floor() Decimal {
	// big.Int's Div is Euclidean: for the positive divisor 10^scale it
	// rounds toward negative infinity.
	return Decimal{c: new(big.Int).Div(a.c, pow10(a.scale))}
}

// Abs returns |a| with a's scale.
func (a Decimal) Abs() Decimal { return Decimal{c: new(big.Int).Abs(a.c), scale: a.scale} }

// decNumAt returns row i of a numeric vector as a decimal: decimals
// exactly, integers exactly, reals by their shortest round-trip text (so
// 0.1 is 0.1); ok is false for a null or a non-finite real.
func decNumAt(v *store.Vector, i int) (Decimal, bool) {
	switch {
	case v.IsNull(i):
		return Decimal{}, false
	case v.Type == store.TypeDecimal:
		return decAt(v, i)
	case kql.IsIntHeld(v.Type):
		return DecimalFromInt(v.Int[i]), true
	case kql.IsRealHeld(v.Type):
		return decimalFromReal(v.Real[i])
	}
	return Decimal{}, false
}

// decBin evaluates bin(x, size) (and floor(x, size)) for a decimal result
// exactly, as .NET computes Math.Floor(x / size) * size: the floor of the
// exact quotient times size, so the result has size's scale. A size that
// is null, not positive, or not finite gives null; a result outside the
// decimal range fails the query.
func decBin(x, size *store.Vector, n int) (*store.Vector, error) {
	out := newDecVector(n)
	for i := range n {
		a, aok := decAt(x, i)
		s, sok := decNumAt(size, i)
		if !aok || !sok || s.c.Sign() <= 0 {
			setNullAt(out, i, n)
			continue
		}
		xc, sc, _ := align(a, s)
		q := new(big.Int).Div(xc, sc) // Euclidean = floor for sc > 0
		d, err := Decimal{c: q}.Mul(s)
		if err != nil {
			return nil, &ExecError{Msg: fmt.Sprintf("bin(%s, %s): %v", a, s, err)}
		}
		setDec(out, i, d)
	}
	return out, nil
}

// decMap applies f to each row of a decimal vector (nulls stay null).
func decMap(x *store.Vector, n int, f func(Decimal) Decimal) *store.Vector {
	out := newDecVector(n)
	for i := range n {
		a, ok := decAt(x, i)
		if !ok {
			setNullAt(out, i, n)
			continue
		}
		setDec(out, i, f(a))
	}
	return out
}

// decBinAt evaluates bin_at(x, size, fixed) for a decimal result exactly:
// fixed + Math.Floor((x - fixed) / size) * size in decimal arithmetic, so
// the bins are aligned to fixed. A null argument or a size that is not
// positive gives null; a result outside the decimal range fails the query.
func decBinAt(x, size, fixed *store.Vector, n int) (*store.Vector, error) {
	out := newDecVector(n)
	for i := range n {
		a, aok := decAt(x, i)
		s, sok := decNumAt(size, i)
		f, fok := decNumAt(fixed, i)
		if !aok || !sok || !fok || s.c.Sign() <= 0 {
			setNullAt(out, i, n)
			continue
		}
		d, err := a.Sub(f)
		if err == nil {
			xc, sc, _ := align(d, s)
			q := new(big.Int).Div(xc, sc) // Euclidean = floor for sc > 0
			if d, err = (Decimal{c: q}).Mul(s); err == nil {
				d, err = d.Add(f)
			}
		}
		if err != nil {
			return nil, &ExecError{Msg: fmt.Sprintf("bin_at(%s, %s, %s): %v", a, s, f, err)}
		}
		setDec(out, i, d)
	}
	return out, nil
}

// numValueDec returns a numeric constant as a decimal: decimals exactly,
// integers exactly, reals by their shortest round-trip text; ok is false
// for a null or a non-finite real.
func numValueDec(v kql.Value) (Decimal, bool) {
	switch {
	case v.Null:
		return Decimal{}, false
	case v.Type == store.TypeDecimal:
		return decimalValue(v)
	case kql.IsIntHeld(v.Type):
		return DecimalFromInt(v.Int), true
	case kql.IsRealHeld(v.Type):
		return decimalFromReal(v.Real)
	}
	return Decimal{}, false
}

// decSequence is range over decimals: from, from+step, ... while not past
// to, each value the exact sum of the previous and step (no float drift,
// so 0.1 to 0.3 step 0.1 ends at 0.3). More than maxRows values is
// tooMany; a zero step is an error.
func decSequence(from, to, step kql.Value, maxRows int, tooMany error) (*store.Vector, error) {
	f, fok := numValueDec(from)
	t, tok := numValueDec(to)
	s, sok := numValueDec(step)
	if !fok || !tok || !sok || s.c.Sign() == 0 {
		return nil, &ExecError{Msg: "range: step must be a non-zero number"}
	}
	if cnt := (t.Float64()-f.Float64())/s.Float64() + 1; cnt > float64(maxRows) {
		return nil, tooMany
	}
	out := &store.Vector{Type: store.TypeDecimal}
	for v := f; ; {
		if c := v.Cmp(t); (s.c.Sign() > 0 && c > 0) || (s.c.Sign() < 0 && c < 0) {
			break
		}
		if len(out.Real) >= maxRows {
			return nil, tooMany
		}
		out.Real = append(out.Real, v.Float64())
		out.Str = append(out.Str, v.String())
		next, err := v.Add(s)
		if err != nil {
			break // the next value is outside the decimal range, so past to
		}
		v = next
	}
	return out, nil
}

// decSeries is make-series' bin layout over a decimal axis, computed
// exactly: with float64, the bin count ceil((1.1 - 0) / 0.1) is 12 and the
// third bin start from 0.1 step 0.1 prints 0.30000000000000004.
type decSeries struct {
	start, last, step, from, to Decimal
	hasFrom                     bool
}

// newDecSeries reads the exact first and last bin of bins (start is 0, an
// offset, when from is given) and the constants; ok is false when a
// constant is not a finite number or step is not positive (the caller's
// float checks report those).
func newDecSeries(bins *store.Vector, n int, step, from, to kql.Value, hasFrom, hasTo bool) (decSeries, bool) {
	var (
		s  decSeries
		ok bool
	)
	if s.step, ok = numValueDec(step); !ok || s.step.c.Sign() <= 0 {
		return s, false
	}
	s.hasFrom = hasFrom
	if hasFrom {
		if s.from, ok = numValueDec(from); !ok {
			return s, false
		}
	}
	if hasTo {
		if s.to, ok = numValueDec(to); !ok {
			return s, false
		}
	}
	s.start, s.last = Decimal{c: new(big.Int)}, Decimal{c: new(big.Int)}
	seen := false
	for i := range n {
		d, ok := decAt(bins, i)
		if !ok {
			continue
		}
		if !seen || d.Cmp(s.last) > 0 {
			s.last = d
		}
		if !hasFrom && (!seen || d.Cmp(s.start) < 0) {
			s.start = d
		}
		seen = true
	}
	return s, true
}

// quotient returns (a - b) / step rounded down (up with ceil), or false
// when it does not fit an int64.
func (s decSeries) quotient(a, b Decimal, ceil bool) (int64, bool) {
	d, err := a.Sub(b)
	if err != nil {
		return 0, false
	}
	x, y, _ := align(d, s.step)
	q, r := new(big.Int).DivMod(x, y, new(big.Int)) // Euclidean: floor for y > 0
	if ceil && r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// nBins is the number of bins, as series computes it in float64.
func (s decSeries) nBins(hasFrom, hasTo bool) float64 {
	var (
		q  int64
		ok bool
	)
	switch {
	case hasTo && hasFrom:
		q, ok = s.quotient(s.to, s.from, true)
	case hasTo:
		q, ok = s.quotient(s.to, s.start, true)
	default:
		q, ok = s.quotient(s.last, s.start, false)
		q++
	}
	if !ok {
		return math.Inf(1)
	}
	return float64(q)
}

// index returns the bin of row i of bins (not null), or -1 if it does not
// fit an int.
func (s decSeries) index(bins *store.Vector, i int) int {
	d, _ := decAt(bins, i)
	q, ok := s.quotient(d, s.start, false)
	if !ok || q > math.MaxInt32 || q < math.MinInt32 {
		return -1
	}
	return int(q)
}

// axis returns the start of bin j: start + j*step (+ from), exact.
func (s decSeries) axis(j int) kql.Value {
	d, err := DecimalFromInt(int64(j)).Mul(s.step)
	if err == nil {
		d, err = d.Add(s.start)
	}
	if err == nil && s.hasFrom {
		d, err = d.Add(s.from)
	}
	if err != nil {
		return kql.NullValue(store.TypeDecimal)
	}
	return kql.Value{Type: store.TypeDecimal, Real: d.Float64(), Str: d.String()}
}
