package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// SessionIndices creates indices of one shard in the Elasticsearch at url,
// under a name pattern of their own (returned, ending in "*"), and deletes
// them when the test ends. types maps each index's suffix to the type of
// its attributes.session.id field: a "long" beside a "keyword" makes a
// session's term query fail on that shard alone, as a partial answer.
func SessionIndices(t testing.TB, url string, types map[string]string) string {
	t.Helper()
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	prefix := "pamtrail-test-" + hex.EncodeToString(id) + "-"
	t.Cleanup(func() { _ = esRequest(http.MethodDelete, url+"/"+prefix+"*", "") })
	for suffix, typ := range types {
		body := fmt.Sprintf(`{"settings":{"number_of_shards":1,"number_of_replicas":0},`+
			`"mappings":{"properties":{"attributes":{"properties":{"session.id":{"type":%q}}}}}}`, typ)
		if err := esRequest(http.MethodPut, url+"/"+prefix+suffix, body); err != nil {
			t.Fatal(err)
		}
	}
	return prefix + "*"
}

func esRequest(method, url, body string) error {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Close = true // no idle connection left behind for goleak
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		return fmt.Errorf("%s %s: %s: %s", method, url, res.Status, b)
	}
	return nil
}
