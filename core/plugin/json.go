package plugin

import "encoding/json"

// jsonMessage extracts "@message" from an hclog JSON line, or "" if it is not one.
func jsonMessage(line string) string {
	var m map[string]any
	if json.Unmarshal([]byte(line), &m) != nil {
		return ""
	}
	msg, _ := m["@message"].(string)
	if lvl, _ := m["@level"].(string); lvl != "" && msg != "" {
		return "[" + lvl + "] " + msg
	}
	return msg
}
