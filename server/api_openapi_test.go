package server_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// apiOpenAPIOp is one operation of docs/openapi.yaml.
type apiOpenAPIOp struct {
	method, path string
	route        string // the mux pattern serving it
	op           map[string]any
}

// apiLoadOpenAPI parses docs/openapi.yaml and checks that it holds
// together: an OpenAPI 3.0 document whose every $ref resolves, whose every
// operation has responses, and whose path parameters are all declared.
func apiLoadOpenAPI(t *testing.T) (map[string]any, []apiOpenAPIOp) {
	t.Helper()
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if v, _ := spec["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Fatalf("openapi: %q, want 3.0.x", v)
	}
	// Every $ref points at something.
	var walk func(path string, n any)
	walk = func(path string, n any) {
		switch n := n.(type) {
		case map[string]any:
			if ref, ok := n["$ref"].(string); ok {
				if _, err := apiResolve(spec, ref); err != nil {
					t.Errorf("%s: %v", path, err)
				}
			}
			for k, v := range n {
				walk(path+"/"+k, v)
			}
		case []any:
			for i, v := range n {
				walk(fmt.Sprintf("%s/%d", path, i), v)
			}
		}
	}
	walk("#", spec)

	paths, _ := spec["paths"].(map[string]any)
	var ops []apiOpenAPIOp
	placeholder := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			if !slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options"}, method) {
				t.Errorf("%s: %q is not an HTTP method", path, method)
				continue
			}
			o := apiOpenAPIOp{method: strings.ToUpper(method), path: path, op: op.(map[string]any)}
			o.route = o.method + " " + path
			if r, ok := o.op["x-tandem-route"].(string); ok {
				o.route = r
			}
			if rs, _ := o.op["responses"].(map[string]any); len(rs) == 0 {
				t.Errorf("%s %s: no responses", o.method, path)
			}
			declared := map[string]bool{}
			params, _ := o.op["parameters"].([]any)
			for _, p := range params {
				p := p.(map[string]any)
				if ref, ok := p["$ref"].(string); ok {
					r, err := apiResolve(spec, ref)
					if err != nil {
						continue // reported above
					}
					p = r.(map[string]any)
				}
				if p["in"] == "path" {
					declared[p["name"].(string)] = true
				}
			}
			for _, m := range placeholder.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s %s: path parameter %q is not declared", o.method, path, m[1])
				}
			}
			ops = append(ops, o)
		}
	}
	return spec, ops
}

// apiResolve follows a local $ref ("#/components/schemas/Error").
func apiResolve(spec map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var n any = spec
	for part := range strings.SplitSeq(rest, "/") {
		m, ok := n.(map[string]any)
		if !ok || m[part] == nil {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
		n = m[part]
	}
	return n, nil
}

// TestAPIOpenAPIMatchesRoutes: every route in docs/openapi.yaml is served,
// and every route the server registers is in it.
func TestAPIOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	_, ops := apiLoadOpenAPI(t)
	a := apiStart(t, nil)
	registered := a.srv.Web.Routes()
	if len(registered) < 15 {
		t.Fatalf("the server reports only %d routes: %v", len(registered), registered)
	}
	documented := map[string]bool{}
	for _, o := range ops {
		documented[o.route] = true
		if !slices.Contains(registered, o.route) {
			t.Errorf("docs/openapi.yaml has %s %s (route %q); the server has no such route", o.method, o.path, o.route)
		}
	}
	for _, r := range registered {
		if !documented[r] {
			t.Errorf("the server serves %q; docs/openapi.yaml does not describe it", r)
		}
	}

	// And each documented operation reaches a handler: the mux answers
	// neither its 404 nor its 405 (an unauthenticated API call gets the
	// API's own 401).
	example := strings.NewReplacer("{id}", "x", "{channel}", "chat:1", "{file}", "tandem.js")
	for _, o := range ops {
		req, err := http.NewRequest(o.method, a.base+example.Replace(o.path), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ctype := resp.Header.Get("Content-Type")
		if resp.StatusCode == http.StatusMethodNotAllowed || (resp.StatusCode == http.StatusNotFound && strings.HasPrefix(ctype, "text/plain")) {
			t.Errorf("%s %s: the server answers %d (%s): not routed", o.method, o.path, resp.StatusCode, ctype)
		}
	}
}
