package models

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CategoryAttributes returns a category's questions.
func CategoryAttributes(c *Category) []Attribute {
	var as []Attribute
	_ = json.Unmarshal([]byte(c.Attributes), &as)
	return as
}

// ValidateAnswers checks a reporter's answers against a category's questions and returns
// them normalised (numbers as numbers, lists as lists of keys). Answers come as strings
// from a form or as JSON values; unknown questions are refused so a typo is not lost.
func ValidateAnswers(c *Category, answers map[string]any) (map[string]any, error) {
	out := map[string]any{}
	attrs := CategoryAttributes(c)
	known := map[string]bool{}
	for _, a := range attrs {
		known[a.Code] = true
		v, ok := answers[a.Code]
		if !ok || unanswered(v) {
			if a.Required {
				return nil, Problemf(ErrInvalid, "invalid-attribute", "question %q (%s) needs an answer", a.Code, a.Description)
			}
			continue
		}
		norm, err := answer(a, v)
		if err != nil {
			return nil, Problemf(ErrInvalid, "invalid-attribute", "answer to %q: %v", a.Code, err)
		}
		out[a.Code] = norm
	}
	for code := range answers {
		if !known[code] {
			return nil, Problemf(ErrInvalid, "invalid-attribute", "category %s asks no question %q", c.Code, code)
		}
	}
	return out, nil
}

// unanswered reports whether an answer says nothing: null, empty text or an empty list.
func unanswered(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case []string:
		return len(v) == 0
	}
	return false
}

func answer(a Attribute, v any) (any, error) {
	keys := make([]string, len(a.Values))
	for i, val := range a.Values {
		keys[i] = val.Key
	}
	str := func() (string, error) {
		switch v := v.(type) {
		case string:
			return v, nil
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64), nil
		}
		return "", fmt.Errorf("expected text, got %T", v)
	}
	switch a.Datatype {
	case "number":
		switch n := v.(type) {
		case float64:
			return n, nil
		case string:
			// ParseFloat also reads "NaN" and "Inf", which are no numbers of an answer's
			// and cannot be stored (JSON has no such numbers).
			f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%q is not a number", n)
			}
			return f, nil
		}
		return nil, fmt.Errorf("expected a number")
	case "datetime":
		s, err := str()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an RFC 3339 date and time", s)
		}
		return t.UTC().Format(time.RFC3339), nil
	case "singlevaluelist":
		s, err := str()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(keys, s) {
			return nil, fmt.Errorf("%q is not one of %v", s, keys)
		}
		return s, nil
	case "multivaluelist":
		var list []string
		switch v := v.(type) {
		case string:
			list = strings.Split(v, ",")
		case []string:
			list = v
		case []any:
			for _, x := range v {
				s, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("expected a list of keys")
				}
				list = append(list, s)
			}
		default:
			return nil, fmt.Errorf("expected a list of keys")
		}
		for _, s := range list {
			if !slices.Contains(keys, s) {
				return nil, fmt.Errorf("%q is not one of %v", s, keys)
			}
		}
		return list, nil
	default: // string, text
		s, err := str()
		if err != nil {
			return nil, err
		}
		// Text the database can store as it is (PostgreSQL's JSON has no NUL).
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("not UTF-8 text, or has a NUL character")
		}
		if len(s) > 4000 {
			return nil, fmt.Errorf("longer than 4000 characters")
		}
		return s, nil
	}
}
