package metadata

import "strconv"

// Values returns every value of key in md, in order: md[key] first, then
// md[key+"[1]"], md[key+"[2]"] and so on, up to the first index missing; nil when md
// has no key.
//
// A Kafka record may carry one header key several times (librdkafka and the Java
// client allow it), and metadata holds one value per key: the transport keeps the
// first value under key and each later one, in record order, under "key[1]",
// "key[2]"... So a handler reads all values of a repeated header with Values, and a
// message published with such keys is written back as the repeated header. It is safe
// for concurrent use with other readers of md.
func Values(md map[string]string, key string) []string {
	v, ok := md[key]
	if !ok {
		return nil
	}
	values := []string{v}
	for n := 1; ; n++ {
		v, ok := md[RepeatedKey(key, n)]
		if !ok {
			return values
		}
		values = append(values, v)
	}
}

// RepeatedKey is the metadata key of the value number n (1 for the second value) of
// a header that a record carries more than once: key + "[n]".
func RepeatedKey(key string, n int) string {
	return key + "[" + strconv.Itoa(n) + "]"
}

// SplitRepeatedKey reads a key written by RepeatedKey: the header's key and the
// value's number n (at least 1); ok is false for any other key.
func SplitRepeatedKey(k string) (key string, n int, ok bool) {
	if len(k) < 4 || k[len(k)-1] != ']' {
		return "", 0, false
	}
	open := len(k) - 2
	for open > 0 && k[open] >= '0' && k[open] <= '9' {
		open--
	}
	digits := k[open+1 : len(k)-1]
	if k[open] != '[' || open == 0 || digits == "" || digits[0] == '0' || len(digits) > 9 {
		return "", 0, false
	}
	n, _ = strconv.Atoi(digits)
	return k[:open], n, true
}
