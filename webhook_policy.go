package salesforce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Where webhooks may connect. A webhook URL is chosen by whoever may write
// accounts or config/rotation; without a limit the engine would post (and
// report on) requests to Vault's own listener, the cloud metadata service
// or anything else on the internal network. So webhooks reach only public
// addresses, plus the networks the operator lists in config/rotation's
// webhook_allowed_networks for internal receivers.
//
// The check that counts is made on the address each connection is dialled
// to (net.Dialer.Control), after name resolution: a name that resolved to a
// public address when it was written and to an internal one when used (DNS
// rebinding) is refused all the same. URLs whose host is an internal IP
// literal or a well-known internal name are also refused when written, so
// the operator hears about them then.

// webhookPolicy is where webhooks may go, from config/rotation.
type webhookPolicy struct {
	// allowInsecure permits http URLs (allow_insecure_webhooks).
	allowInsecure bool
	// allowed are the operator's webhook_allowed_networks.
	allowed []netip.Prefix
}

// errWebhookDelivery is all a caller learns when a webhook request got no
// HTTP answer: whether the address was refused, the port closed, the
// connection timed out or TLS failed would tell a writer of webhook URLs
// what listens where. The server log has the details.
var errWebhookDelivery = errors.New("delivery failed: no answer from the receiver (Vault's server log says why; " +
	"receivers on loopback, private or link-local addresses must be listed in config/rotation's webhook_allowed_networks)")

// webhookPolicy returns the stored policy. Entries were checked when
// written; one that no longer parses is skipped (it allows nothing).
func (rc *rotationConfig) webhookPolicy() webhookPolicy {
	p := webhookPolicy{allowInsecure: rc.AllowInsecureWebhooks}
	for _, entry := range rc.WebhookAllowedNetworks {
		if prefix, err := parseAllowedNetwork(entry); err == nil {
			p.allowed = append(p.allowed, prefix)
		}
	}
	return p
}

// parseAllowedNetwork reads one webhook_allowed_networks entry: a CIDR
// (10.20.0.0/16, fd12::/64) or a single address.
func parseAllowedNetwork(entry string) (netip.Prefix, error) {
	entry = strings.TrimSpace(entry)
	var prefix netip.Prefix
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("webhook_allowed_networks entry %q is not a CIDR such as 10.20.0.0/16 or an address", entry)
		}
		prefix = p
	} else {
		a, err := netip.ParseAddr(entry)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("webhook_allowed_networks entry %q is not a CIDR such as 10.20.0.0/16 or an address", entry)
		}
		prefix = netip.PrefixFrom(a, a.BitLen())
	}
	// ::ffff:10.0.0.0/104 and 10.0.0.0/8 are one network.
	if a := prefix.Addr(); a.Is4In6() && prefix.Bits() >= 96 {
		prefix = netip.PrefixFrom(a.Unmap(), prefix.Bits()-96)
	}
	if prefix.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("webhook_allowed_networks entry %q would allow every address; list the receivers' networks", entry)
	}
	return prefix.Masked(), nil
}

// normalizeAllowedNetworks checks and normalizes a write of
// webhook_allowed_networks.
func normalizeAllowedNetworks(entries []string) ([]string, error) {
	var out []string
	for _, entry := range entries {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		prefix, err := parseAllowedNetwork(entry)
		if err != nil {
			return nil, err
		}
		out = append(out, prefix.String())
	}
	return out, nil
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// internalRanges are special-purpose ranges that netip's predicates do not
// cover; none holds a public receiver.
var internalRanges = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast address"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 address"},
	{netip.MustParsePrefix("fec0::/10"), "site-local IPv6 address"},
}

// refuses says why a webhook may not connect to a, or "" when it may.
func (p webhookPolicy) refuses(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	for _, allowed := range p.allowed {
		if allowed.Contains(a) {
			return ""
		}
	}
	if nat64.Contains(a) {
		b := a.As16()
		if why := p.refuses(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); why != "" {
			return why + " (through NAT64)"
		}
		return ""
	}
	switch {
	case a.IsLoopback():
		return "loopback address"
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsLinkLocalUnicast():
		return "link-local address (such as a cloud metadata service)"
	case a.IsMulticast():
		return "multicast address"
	case a.IsPrivate():
		return "private address"
	}
	for _, r := range internalRanges {
		if r.prefix.Contains(a) {
			return r.what
		}
	}
	return ""
}

// wellKnownInternalHosts are names that always lead inside, checked when a
// URL is written (at delivery the resolved address is checked anyway).
var wellKnownInternalHosts = map[string]netip.Addr{
	"localhost":                  netip.MustParseAddr("127.0.0.1"),
	"metadata.google.internal":   netip.MustParseAddr("169.254.169.254"),
	"metadata.goog":              netip.MustParseAddr("169.254.169.254"),
	"metadata":                   netip.MustParseAddr("169.254.169.254"),
	"instance-data":              netip.MustParseAddr("169.254.169.254"),
	"instance-data.ec2.internal": netip.MustParseAddr("169.254.169.254"),
}

// checkHost refuses a URL host that is an internal IP literal or a
// well-known internal name, unless the allow-list covers it.
func (p webhookPolicy) checkHost(hostname string) error {
	host := strings.TrimSuffix(strings.ToLower(hostname), ".")
	a, err := netip.ParseAddr(host)
	if err != nil {
		known, ok := wellKnownInternalHosts[host]
		if !ok && strings.HasSuffix(host, ".localhost") {
			known, ok = wellKnownInternalHosts["localhost"], true
		}
		if !ok {
			return nil
		}
		a = known
	}
	if why := p.refuses(a); why != "" {
		return fmt.Errorf("must not point at %s, a %s: webhooks reach such addresses only when config/rotation's webhook_allowed_networks lists them", hostname, why)
	}
	return nil
}

// checkDial is the dialer's Control function: it runs for every address a
// connection is attempted to, after name resolution.
func (p webhookPolicy) checkDial(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &webhookRefusedError{address: address, why: "address that cannot be read"}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return &webhookRefusedError{address: address, why: "address that cannot be read"}
	}
	if why := p.refuses(a); why != "" {
		return &webhookRefusedError{address: host, why: why}
	}
	return nil
}

// webhookRefusedError is a connection the policy refused; it goes to the
// server log, never to the caller.
type webhookRefusedError struct {
	address, why string
}

func (e *webhookRefusedError) Error() string {
	return fmt.Sprintf("%s is a %s, which webhooks may not reach unless config/rotation's webhook_allowed_networks lists it", e.address, e.why)
}

// validateWebhookURL accepts absolute https URLs (http too when the policy
// allows insecure webhooks) without user:password, which would be sent
// with every event, and whose host is no internal IP literal or name the
// policy refuses.
func validateWebhookURL(raw string, p webhookPolicy) error {
	u, err := checkWebhookURLForm(raw, p.allowInsecure)
	if err != nil {
		return err
	}
	return p.checkHost(u.Hostname())
}

// checkWebhookURLForm checks scheme and user info only.
func checkWebhookURLForm(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("must be an absolute https URL")
	}
	if u.User != nil {
		return nil, fmt.Errorf("must not contain a user name or password; receivers can check events with the webhook_secret signature")
	}
	if u.Scheme == "http" && !allowInsecure {
		return nil, fmt.Errorf("must use https (events would travel unencrypted); set allow_insecure_webhooks=true in config/rotation to allow http")
	}
	return u, nil
}
