//! Fault injection for the local cloud: rules that make the server misbehave on chosen requests
//! (HTTP errors, malformed or truncated bodies, dropped or reset connections, delays, OpenNebula
//! error tuples, XML-RPC faults, oversized bodies), plus per-(site, service, op) request counters
//! for retry tests.
//!
//! Framework-free: the server asks [`FaultSet::take`] which fault (if any) applies to a request
//! and carries it out itself.

use std::collections::HashMap;
use std::time::Duration;

/// Which of a site's services a rule or a counter is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// OpenNebula XML-RPC (one-proxy `/pswd`, `/cert`, or direct `/RPC2`).
    Compute,
    /// The persistent-disk REST service.
    Pdisk,
    /// The (global) Marketplace.
    Marketplace,
    /// Matches every service (rules only).
    Any,
}

/// What the server does instead of (or on top of) its normal reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Reply with this HTTP status and a small HTML body (500, 502, 503, 401, 403, ...).
    Status(u16),
    /// HTTP 200 with a body that is not what the protocol expects.
    Malformed,
    /// The normal body cut in the middle; `Content-Length` is honest for what is sent.
    Truncated,
    /// Close the connection without sending any reply.
    Drop,
    /// Send the headers (declaring the full length) and half the body, then reset (RST) the
    /// connection.
    Reset,
    /// Wait this long, then reply normally.
    Slow(Duration),
    /// Compute only: reply with the OpenNebula error tuple `[false, message, code]`.
    OneError(i32, String),
    /// Compute only: reply with an XML-RPC fault.
    Fault(i32, String),
    /// The normal reply, sent as `text/html`.
    WrongContentType,
    /// HTTP 200 with a well-formed reply of about this many bytes (an XML-RPC string for
    /// compute, JSON or RDF padding otherwise).
    HugeBody(usize),
    /// Lost reply after acting: the request is carried out, then the proxy answers this HTTP
    /// status instead of the reply (a 502/503/504 from one-proxy after oned acted).
    StatusAfter(u16),
    /// Lost reply after acting: the request is carried out, then the connection is closed
    /// without any reply.
    DropAfter,
    /// Delay before acting: the request is carried out only after this long, whether or not the
    /// client is still waiting (a request still in flight when the client timed out).
    Late(Duration),
}

/// One fault-injection rule; `None` fields match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Site name (first path segment); `None` = every site (and the Marketplace).
    pub site: Option<String>,
    /// Service the rule applies to.
    pub service: Service,
    /// XML-RPC method name (`one.vm.info`) or REST `"<METHOD> /<first segment>"`
    /// (`GET /disks`, `GET /metadata`); `None` = every operation.
    pub op: Option<String>,
    /// What happens.
    pub kind: FaultKind,
    /// How many matching requests it applies to; `None` = until cleared.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule matching every request of `service` at every site, applied until cleared.
    pub fn new(service: Service, kind: FaultKind) -> Self {
        FaultRule {
            site: None,
            service,
            op: None,
            kind,
            times: None,
        }
    }

    /// Restricts the rule to one site.
    pub fn at_site(mut self, site: &str) -> Self {
        self.site = Some(site.to_owned());
        self
    }

    /// Restricts the rule to one operation.
    pub fn for_op(mut self, op: &str) -> Self {
        self.op = Some(op.to_owned());
        self
    }

    /// Applies the rule to the next `n` matching requests only.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, site: Option<&str>, service: Service, op: &str) -> bool {
        let site_ok = match (&self.site, site) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
        };
        let service_ok = self.service == Service::Any || self.service == service;
        let op_ok = self.op.as_deref().is_none_or(|want| want == op);
        site_ok && service_ok && op_ok
    }
}

/// The active rules and the request counters.
#[derive(Debug, Default)]
pub struct FaultSet {
    rules: Vec<FaultRule>,
    counts: HashMap<(String, Service, String), u64>,
}

impl FaultSet {
    /// An empty set: no faults, no counts.
    pub fn new() -> Self {
        FaultSet::default()
    }

    /// Adds a rule; earlier rules win when several match.
    pub fn add(&mut self, rule: FaultRule) {
        if rule.times != Some(0) {
            self.rules.push(rule);
        }
    }

    /// Removes every rule (counters are kept).
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Counts the request and returns the fault to apply to it, if any (consuming one use of a
    /// rule limited by `times`). `site` is `None` for the global Marketplace.
    pub fn take(&mut self, site: Option<&str>, service: Service, op: &str) -> Option<FaultKind> {
        *self
            .counts
            .entry((site.unwrap_or("").to_owned(), service, op.to_owned()))
            .or_insert(0) += 1;
        let index = self
            .rules
            .iter()
            .position(|rule| rule.matches(site, service, op))?;
        let rule = &mut self.rules[index];
        let kind = rule.kind.clone();
        if let Some(left) = rule.times.as_mut() {
            *left -= 1;
            if *left == 0 {
                self.rules.remove(index);
            }
        }
        Some(kind)
    }

    /// Requests seen for (site, service, op); `site` "" is the global Marketplace,
    /// `service` [`Service::Any`] and `op` "*" sum over every service / operation.
    pub fn count(&self, site: &str, service: Service, op: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((s, sv, o), _)| {
                s == site && (service == Service::Any || *sv == service) && (op == "*" || o == op)
            })
            .map(|(_, n)| *n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins_and_times_runs_out() {
        let mut set = FaultSet::new();
        set.add(
            FaultRule::new(Service::Compute, FaultKind::Status(503))
                .at_site("lal")
                .for_op("one.vm.info")
                .times(2),
        );
        set.add(FaultRule::new(Service::Any, FaultKind::Drop).at_site("lal"));
        assert_eq!(
            set.take(Some("lal"), Service::Compute, "one.vm.info"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(
            set.take(Some("lal"), Service::Compute, "one.vm.info"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(
            set.take(Some("lal"), Service::Compute, "one.vm.info"),
            Some(FaultKind::Drop)
        );
        assert_eq!(
            set.take(Some("grnet"), Service::Compute, "one.vm.info"),
            None
        );
        assert_eq!(set.take(None, Service::Marketplace, "GET /metadata"), None);
        set.clear();
        assert_eq!(set.take(Some("lal"), Service::Pdisk, "GET /disks"), None);
    }

    #[test]
    fn counts_per_site_service_and_op() {
        let mut set = FaultSet::new();
        set.take(Some("lal"), Service::Compute, "one.vm.info");
        set.take(Some("lal"), Service::Compute, "one.vm.info");
        set.take(Some("lal"), Service::Compute, "one.vm.action");
        set.take(Some("lal"), Service::Pdisk, "GET /disks");
        set.take(None, Service::Marketplace, "GET /metadata");
        assert_eq!(set.count("lal", Service::Compute, "one.vm.info"), 2);
        assert_eq!(set.count("lal", Service::Compute, "*"), 3);
        assert_eq!(set.count("lal", Service::Any, "*"), 4);
        assert_eq!(set.count("", Service::Marketplace, "GET /metadata"), 1);
        assert_eq!(set.count("grnet", Service::Any, "*"), 0);
    }

    #[test]
    fn zero_times_rule_is_ignored() {
        let mut set = FaultSet::new();
        set.add(FaultRule::new(Service::Any, FaultKind::Malformed).times(0));
        assert_eq!(set.take(Some("a"), Service::Compute, "x"), None);
    }
}
