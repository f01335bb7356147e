package salesforce

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The SDK converts a request's fields before any handler runs, in the
// existence check and again in the request, and when a value does not
// convert its error quotes the value: a password sent as a JSON object
// would come back in the response, in Vault's server log (which logs
// failed existence checks) and in the audit log's un-hashed error field.
// So the raw types of sensitive fields are checked first, and a wrong one
// is refused naming only the field and the type it must have.

// HandleExistenceCheck is framework.Backend's, after the request checks.
// A refusal is a user error: Vault answers 400 with its text.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (checkFound bool, exists bool, err error) {
	if msg := b.requestError(req); msg != "" {
		return false, false, errutil.UserError{Err: msg}
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// HandleRequest is framework.Backend's, after the request checks.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if msg := b.requestError(req); msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	return b.Backend.HandleRequest(ctx, req)
}

// requestError returns why req is refused before any handler runs, or "".
func (b *backend) requestError(req *logical.Request) string {
	if msg := b.sensitiveFieldTypeError(req); msg != "" {
		return msg
	}
	return b.allowedValueError(req)
}

// allowedValueError refuses a field with a value outside its schema's
// AllowedValues, which the SDK lists in help and OpenAPI but does not
// enforce. An empty string leaves the field at its default.
func (b *backend) allowedValueError(req *logical.Request) string {
	p := b.Route(req.Path)
	if p == nil || len(req.Data) == 0 {
		return ""
	}
	names := make([]string, 0, len(req.Data))
	for name := range req.Data {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := p.Fields[name]
		if f == nil || len(f.AllowedValues) == 0 {
			continue
		}
		v, ok := req.Data[name].(string)
		if !ok || v == "" {
			continue
		}
		allowed := make([]string, len(f.AllowedValues))
		found := false
		for i, a := range f.AllowedValues {
			allowed[i] = fmt.Sprint(a)
			found = found || allowed[i] == v
		}
		if !found {
			return fmt.Sprintf("%s must be one of %s", name, strings.Join(allowed, ", "))
		}
	}
	return ""
}

// sensitiveFieldTypeError returns why a sensitive field of req has a raw
// value its type cannot hold, or "". Only operations routed to a path are
// checked: renew, revoke and rollback carry the engine's own data.
func (b *backend) sensitiveFieldTypeError(req *logical.Request) string {
	switch req.Operation {
	case logical.CreateOperation, logical.UpdateOperation, logical.PatchOperation,
		logical.ReadOperation, logical.ListOperation, logical.DeleteOperation:
	default:
		return ""
	}
	if len(req.Data) == 0 {
		return ""
	}
	p := b.Route(req.Path)
	if p == nil {
		return ""
	}
	var names []string
	for name := range req.Data {
		if f := p.Fields[name]; f != nil && f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if want := rawTypeMismatch(p.Fields[name].Type, req.Data[name]); want != "" {
			return fmt.Sprintf("%s must be %s", name, want)
		}
	}
	return ""
}

// rawTypeMismatch returns the type a field of type t must be sent as when
// raw is not that, or "". JSON null means unset and always passes.
func rawTypeMismatch(t framework.FieldType, raw interface{}) string {
	if raw == nil {
		return ""
	}
	switch t {
	case framework.TypeString, framework.TypeLowerCaseString, framework.TypeNameString:
		if _, ok := raw.(string); !ok {
			return "a string"
		}
	case framework.TypeStringSlice, framework.TypeCommaStringSlice:
		switch v := raw.(type) {
		case string, []string:
		case []interface{}:
			for _, e := range v {
				if _, ok := e.(string); !ok {
					return "a string or a list of strings"
				}
			}
		default:
			return "a string or a list of strings"
		}
	default:
		// Other types convert from scalars; only objects and lists could
		// smuggle text into an error.
		switch raw.(type) {
		case map[string]interface{}, []interface{}:
			return "a single value, not an object or a list"
		}
	}
	return ""
}
