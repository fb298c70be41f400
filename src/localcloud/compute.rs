//! Per-site OpenNebula emulation (framework-free): users, virtual networks with IP leases, the VM
//! pool and its state machine, and the XML-RPC methods a StratusLab client uses
//! (`one.system.version`, `one.vm.allocate`, `one.vm.info`, `one.vmpool.info`, `one.vm.action`).
//!
//! Replies, error texts and codes, and `(STATE, LCM_STATE)` sequences follow a real 3.8.5 daemon
//! (`tests/fixtures/localcloud/opennebula-3.8.5/`) and, for the other version knobs, OpenNebula's
//! sources at tags `release-3.2.1`, `release-4.14.2` and `release-5.12.0`. Parameters are read
//! lazily in the daemon's order, so wrong arity or type gives xmlrpc-c's `-501` faults exactly
//! where the daemon gives them.
//!
//! Time never runs by itself: every call passes `now` (Unix seconds) and pending transitions whose
//! time has come are applied first, each at its own due time.
//!
//! This file is the dispatch (XML-RPC method → handler, parameters, authorization, pool
//! rendering); the rest lives beside it: `dialect` (version knobs, action names, state names),
//! `network` (virtual networks and leases), `lifecycle` (the state machine and HISTORY),
//! `instantiate` (template expansion) and `one7` (the 7.x plain-site methods).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

use super::cloud::LocalCloudError;
use super::vmxml::{self, HistoryDoc, Permissions, VmDoc};
use super::VmView;
use crate::one::template::{self, TemplateValue};
use crate::xmlrpc::{Value, FAULT_NO_SUCH_METHOD, FAULT_PARAMETERS};

mod dialect;
mod instantiate;
mod lifecycle;
mod network;
mod one7;

pub use dialect::Dialect;
use dialect::{action_op, state_str};
use lifecycle::{close_history, secs, ActionError, Ev, Op};
use network::Network;
pub use network::NetworkSpec;
pub use one7::PlainState;

/// An XML-RPC fault: (code, message).
pub type Fault = (i32, String);

// OpenNebula error codes (include/Request.h).
const AUTHENTICATION: i64 = 0x0100;
const AUTHORIZATION: i64 = 0x0200;
const NO_EXISTS: i64 = 0x0400;
const ACTION: i64 = 0x0800;
const XML_RPC_API: i64 = 0x1000;
const INTERNAL: i64 = 0x2000;

// VM states (include/VirtualMachine.h).
const INIT: i32 = 0;
const PENDING: i32 = 1;
const HOLD: i32 = 2;
const ACTIVE: i32 = 3;
const STOPPED: i32 = 4;
const SUSPENDED: i32 = 5;
const DONE: i32 = 6;
const FAILED: i32 = 7;
const POWEROFF: i32 = 8;
const UNDEPLOYED: i32 = 9;

// LCM states.
const LCM_INIT: i32 = 0;
const PROLOG: i32 = 1;
const BOOT: i32 = 2;
const RUNNING: i32 = 3;
const SAVE_STOP: i32 = 5;
const SAVE_SUSPEND: i32 = 6;
const PROLOG_RESUME: i32 = 9;
const EPILOG_STOP: i32 = 10;
const EPILOG: i32 = 11;
const SHUTDOWN: i32 = 12;
const CANCEL: i32 = 13;
const CLEANUP: i32 = 15;
const UNKNOWN: i32 = 16;
const SHUTDOWN_POWEROFF: i32 = 18;
const BOOT_UNKNOWN: i32 = 19;
const BOOT_POWEROFF: i32 = 20;
const BOOT_SUSPENDED: i32 = 21;
const BOOT_STOPPED: i32 = 22;
// 4.x numbers (release-4.14.2 and later; include/VirtualMachine.h).
const SHUTDOWN_UNDEPLOY: i32 = 29;
const EPILOG_UNDEPLOY: i32 = 30;
const PROLOG_UNDEPLOY: i32 = 31;
const BOOT_UNDEPLOY: i32 = 32;

/// History `REASON` values (include/History.h).
const REASON_NONE: i32 = 0;
const REASON_ERROR: i32 = 1;
const REASON_STOP_RESUME: i32 = 2;
const REASON_USER: i32 = 3;

/// The one image of the emulated image repository (what the 3.8.5 capture's `IMAGE_ID=0` disk
/// expands to with the dummy datastore).
const IMAGE_ID: i64 = 0;
const IMAGE_NAME: &str = "ttylinux";

/// Site settings.
#[derive(Debug, Clone)]
pub struct ComputeOptions {
    /// Time between two lifecycle steps (PENDING → PROLOG → BOOT → RUNNING, ...); 0 = immediate.
    pub boot_step: Duration,
    /// Virtual networks, owned by oneadmin; ids in this order.
    pub networks: Vec<NetworkSpec>,
    /// Hypervisor hosts VMs are placed on (round robin); HID = index.
    pub hosts: Vec<String>,
    /// Users known from the start (uid 1, 2, ... in group `users`); oneadmin is uid 0.
    pub users: Vec<String>,
    /// A plain OpenNebula site: image, template and vnet pools, hot-plug (`one7.rs`).
    pub plain: bool,
}

impl Default for ComputeOptions {
    fn default() -> Self {
        ComputeOptions {
            boot_step: Duration::from_millis(50),
            networks: vec![
                NetworkSpec {
                    name: "public".into(),
                    first: Ipv4Addr::new(192, 0, 2, 10),
                    count: 200,
                    bridge: "br0".into(),
                },
                NetworkSpec {
                    name: "private".into(),
                    first: Ipv4Addr::new(10, 1, 0, 1),
                    count: 65_000,
                    bridge: "br1".into(),
                },
                NetworkSpec {
                    name: "local".into(),
                    first: Ipv4Addr::new(172, 16, 0, 1),
                    count: 250,
                    bridge: "br0".into(),
                },
            ],
            hosts: vec!["dummyhost".into()],
            users: Vec::new(),
            plain: false,
        }
    }
}

#[derive(Debug, Clone)]
struct User {
    id: i64,
    name: String,
    gid: i64,
    gname: String,
}

#[derive(Debug, Clone, Default)]
struct Hist {
    seq: i64,
    hostname: String,
    hid: i64,
    stime: i64,
    etime: i64,
    pstime: i64,
    petime: i64,
    rstime: i64,
    retime: i64,
    estime: i64,
    eetime: i64,
    reason: i32,
}

#[derive(Debug)]
struct Vm {
    id: i64,
    uid: i64,
    gid: i64,
    uname: String,
    gname: String,
    name: String,
    state: i32,
    lcm: i32,
    resched: bool,
    stime: i64,
    etime: i64,
    last_poll: i64,
    deploy_id: String,
    template: Vec<(String, TemplateValue)>,
    raw_template: String,
    history: Vec<Hist>,
    /// (network index, address offset) of every NIC lease.
    leases: Vec<(usize, u32)>,
    /// Future events with their due time (microseconds).
    plan: VecDeque<(i64, Ev)>,
    /// The rendered `<VM>` of `one.vm.info` (every HISTORY), until the VM changes.
    info_doc: Option<String>,
    /// The rendered `<VM>` of `one.vmpool.info` (current HISTORY only), until the VM changes.
    pool_doc: Option<String>,
}

/// Lazy parameter access with xmlrpc-c's fault texts.
fn param(params: &[Value], i: usize) -> Result<&Value, Fault> {
    params
        .get(i)
        .ok_or_else(|| (FAULT_PARAMETERS, "Not enough parameters".to_owned()))
}

fn int_param(params: &[Value], i: usize) -> Result<i64, Fault> {
    param(params, i)?.as_i64().ok_or_else(|| {
        (
            FAULT_PARAMETERS,
            "Parameter that is supposed to be integer is not".to_owned(),
        )
    })
}

fn str_param(params: &[Value], i: usize) -> Result<&str, Fault> {
    param(params, i)?.as_str().ok_or_else(|| {
        (
            FAULT_PARAMETERS,
            "Parameter that is supposed to be a string is not".to_owned(),
        )
    })
}

fn bool_param(params: &[Value], i: usize) -> Result<bool, Fault> {
    param(params, i)?.as_bool().ok_or_else(|| {
        (
            FAULT_PARAMETERS,
            "Parameter that is supposed to be boolean is not".to_owned(),
        )
    })
}

fn success(value: Value) -> Value {
    Value::Array(vec![Value::Bool(true), value, Value::Int(0)])
}

/// One site's OpenNebula.
#[derive(Debug)]
pub struct ComputeState {
    dialect: Dialect,
    version: String,
    step_us: i64,
    hosts: Vec<String>,
    users: Vec<User>,
    networks: Vec<Network>,
    vms: BTreeMap<i64, Vm>,
    next_id: i64,
    /// (due time in microseconds, VM id) of every VM's next planned event.
    due: BTreeSet<(i64, i64)>,
    generation: u64,
    /// VMs that reached DONE since [`take_ended`](Self::take_ended) was last called.
    ended: Vec<i64>,
    /// What a plain OpenNebula site serves besides VMs.
    plain: Option<PlainState>,
}

impl ComputeState {
    /// A site with no VMs, speaking the dialect of `version` (see [`Dialect::parse`]).
    pub fn new(version: &str, options: ComputeOptions) -> Result<ComputeState, LocalCloudError> {
        let (dialect, version) =
            Dialect::parse(version).ok_or_else(|| LocalCloudError::InvalidOption {
                message: format!(
                    "unknown OpenNebula version {version:?} (use 3.2, 3.8, 4.x or 5.x)"
                ),
            })?;
        let mut networks = Vec::new();
        for spec in options.networks {
            let first = u32::from(spec.first);
            if spec.count == 0 || first.checked_add(spec.count - 1).is_none() {
                return Err(LocalCloudError::InvalidOption {
                    message: format!(
                        "network {:?}: {} addresses from {} do not fit in IPv4",
                        spec.name, spec.count, spec.first
                    ),
                });
            }
            networks.push(Network {
                name: spec.name,
                first,
                count: spec.count,
                bridge: spec.bridge,
                used: BTreeSet::new(),
                next: 0,
            });
        }
        let mut state = ComputeState {
            dialect,
            version,
            step_us: i64::try_from(options.boot_step.as_micros()).unwrap_or(i64::MAX / 4),
            hosts: if options.hosts.is_empty() {
                vec!["dummyhost".to_owned()]
            } else {
                options.hosts
            },
            users: vec![User {
                id: 0,
                name: "oneadmin".into(),
                gid: 0,
                gname: "oneadmin".into(),
            }],
            networks,
            vms: BTreeMap::new(),
            next_id: 0,
            due: BTreeSet::new(),
            generation: 0,
            ended: Vec::new(),
            plain: options.plain.then(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                PlainState::seeded(now)
            }),
        };
        for name in &options.users {
            state.user(name);
        }
        Ok(state)
    }

    /// The dialect the site speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Changes whenever anything visible in a document changes (after [`Self::advance`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn user(&mut self, name: &str) -> User {
        if let Some(user) = self.users.iter().find(|u| u.name == name) {
            return user.clone();
        }
        let user = User {
            id: self.users.len() as i64,
            name: name.to_owned(),
            gid: 1,
            gname: "users".into(),
        };
        self.users.push(user.clone());
        user
    }

    fn failure(&self, code: i64, message: String, resp_id: i64) -> Value {
        let mut items = vec![Value::Bool(false), Value::String(message), Value::Int(code)];
        match self.dialect {
            Dialect::One5 => {
                items.push(Value::Int(resp_id));
                items.push(Value::Int(0));
            }
            Dialect::One7 => {
                items.push(Value::Int(resp_id));
                items.push(Value::Int(-1));
            }
            _ => {}
        }
        Value::Array(items)
    }

    /// The reply to a call whose session did not authenticate (direct `/RPC2` with a wrong
    /// `user:password`): unknown method and a non-string session still give their faults first.
    pub fn authentication_failure(&self, method: &str, params: &[Value]) -> Result<Value, Fault> {
        self.check_method(method)?;
        str_param(params, 0)?;
        Ok(self.failure(
            AUTHENTICATION,
            format!(
                "[{}] User couldn't be authenticated, aborting call.",
                self.dialect.request_name(method)
            ),
            -1,
        ))
    }

    fn check_method(&self, method: &str) -> Result<(), Fault> {
        if self.dialect.has_method(method) || one7::serves(self, method) {
            Ok(())
        } else {
            Err((
                FAULT_NO_SUCH_METHOD,
                format!("Method '{method}' not defined"),
            ))
        }
    }

    /// Executes one XML-RPC call by authenticated `user` at `now` (Unix seconds). `Ok` is the
    /// daemon's result array (success or OpenNebula error), `Err` an XML-RPC fault.
    pub fn call(
        &mut self,
        now: f64,
        user: &str,
        method: &str,
        params: &[Value],
    ) -> Result<Value, Fault> {
        self.check_method(method)?;
        str_param(params, 0)?;
        let now = (now * 1e6) as i64;
        self.advance_us(now);
        let user = self.user(user);
        let result = match method {
            "one.system.version" => Ok(success(Value::String(self.version.clone()))),
            "one.vm.allocate" => self.allocate(now, &user, method, params),
            "one.vm.info" => self.info(&user, method, params),
            "one.vmpool.info" => self.pool_info(&user, method, params),
            m if one7::serves(self, m) => one7::call(self, now, &user, m, params),
            _ => self.action(now, &user, method, params),
        };
        self.advance_us(now);
        result
    }

    fn get_error(&self, method: &str, id: i64) -> Value {
        self.failure(
            NO_EXISTS,
            format!(
                "[{}] Error getting virtual machine [{id}].",
                self.dialect.request_name(method)
            ),
            id,
        )
    }

    /// Existence then USE/MANAGE authorization, as the daemon checks them.
    fn authorize(&self, user: &User, method: &str, id: i64, op: &str) -> Result<(), Value> {
        let Some(vm) = self.vms.get(&id) else {
            return Err(self.get_error(method, id));
        };
        if user.gid == 0 || vm.uid == user.id {
            return Ok(());
        }
        Err(self.failure(
            AUTHORIZATION,
            format!(
                "[{}] User [{}] : Not authorized to perform {op} VM [{id}].",
                self.dialect.request_name(method),
                user.id
            ),
            -1,
        ))
    }

    fn info(&mut self, user: &User, method: &str, params: &[Value]) -> Result<Value, Fault> {
        let id = int_param(params, 1)?;
        if let Err(reply) = self.authorize(user, method, id, "USE") {
            return Ok(reply);
        }
        let mut doc = String::new();
        self.render(id, false, &mut doc);
        Ok(success(Value::String(doc)))
    }

    fn pool_info(&mut self, user: &User, method: &str, params: &[Value]) -> Result<Value, Fault> {
        let filter = int_param(params, 1)?;
        let start = int_param(params, 2)?;
        let end = int_param(params, 3)?;
        let state = int_param(params, 4)?;
        let name = self.dialect.request_name(method);
        if self.dialect == Dialect::One7 && (state < -2 || state > self.dialect.max_pool_state()) {
            return Ok(self.failure(
                XML_RPC_API,
                format!("[{name}] Incorrect state filter {state}"),
                -1,
            ));
        }
        if state < -2 || state > self.dialect.max_pool_state() {
            return Ok(self.failure(
                XML_RPC_API,
                format!("[{name}] Incorrect filter_flag, state"),
                -1,
            ));
        }
        if filter < -3 {
            return Ok(self.failure(XML_RPC_API, format!("[{name}] Incorrect filter_flag"), -1));
        }
        let admin = user.gid == 0;
        let lower = if start == -1 { i64::MIN } else { start };
        let upper = if start != -1 && end != -1 {
            end
        } else {
            i64::MAX
        };
        let ids: Vec<i64> = if lower > upper {
            Vec::new()
        } else {
            self.vms
                .range(lower..=upper)
                .filter(|(_, vm)| {
                    // Permissions are OWNER_U only, so other users' VMs are visible to oneadmin's
                    // group alone (PoolSQL::usr_filter with GROUP_U = OTHER_U = 0).
                    let owner_ok = match filter {
                        -3 | -1 => vm.uid == user.id,
                        -2 => admin || vm.uid == user.id,
                        uid => vm.uid == uid && (admin || uid == user.id),
                    };
                    let state_ok = match state {
                        -2 => true,
                        -1 => vm.state != DONE,
                        s => i64::from(vm.state) == s,
                    };
                    owner_ok && state_ok
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let mut pool = String::from("<VM_POOL>");
        if self.dialect == Dialect::One7 {
            // 7.x lists in descending id order; `infoextended` gives full documents.
            let short = method != "one.vmpool.infoextended";
            for id in ids.into_iter().rev() {
                self.render(id, short, &mut pool);
            }
        } else {
            for id in ids {
                self.render(id, true, &mut pool);
            }
        }
        pool.push_str("</VM_POOL>");
        Ok(success(Value::String(pool)))
    }

    fn allocate(
        &mut self,
        now: i64,
        user: &User,
        method: &str,
        params: &[Value],
    ) -> Result<Value, Fault> {
        let text = str_param(params, 1)?.to_owned();
        let hold = match self.dialect {
            Dialect::One4 | Dialect::One5 | Dialect::One7 if params.len() > 2 => {
                bool_param(params, 2)?
            }
            _ => false,
        };
        let name = self.dialect.request_name(method);
        let prefix = format!("[{name}] Error allocating a new virtual machine.");
        let attrs = match template::parse(&text) {
            Ok(attrs) => attrs,
            Err(err) => return Ok(self.failure(INTERNAL, format!("{prefix} {err}"), -1)),
        };
        let id = self.next_id;
        match self.instantiate(id, user, attrs, text, secs(now)) {
            Ok(()) => {
                self.next_id += 1;
                if hold {
                    if let Some(vm) = self.vms.get_mut(&id) {
                        vm.state = HOLD;
                    }
                } else {
                    self.deploy_plan(id, now, PROLOG, BOOT);
                }
                Ok(success(Value::Int(id)))
            }
            Err(detail) => Ok(self.failure(INTERNAL, format!("{prefix} {detail}"), -1)),
        }
    }

    fn action(
        &mut self,
        now: i64,
        user: &User,
        method: &str,
        params: &[Value],
    ) -> Result<Value, Fault> {
        let action = str_param(params, 1)?.to_owned();
        let id = int_param(params, 2)?;
        if let Err(reply) = self.authorize(user, method, id, "MANAGE") {
            return Ok(reply);
        }
        let (op, name) = action_op(self.dialect, &action);
        let rname = self.dialect.request_name(method).to_owned();
        let result = match op {
            Some(op) => self.perform(now, id, op),
            None => Err(ActionError::NotSupported),
        };
        let (state, lcm) = self
            .vms
            .get(&id)
            .map(|v| (v.state, v.lcm))
            .unwrap_or((0, 0));
        Ok(match (result, self.dialect) {
            (Ok(()), _) => success(Value::Int(id)),
            (Err(ActionError::WrongState), Dialect::One32 | Dialect::One38) => self.failure(
                ACTION,
                format!("[{rname}] Wrong state to perform action"),
                -1,
            ),
            (Err(ActionError::WrongState), Dialect::One4) => self.failure(
                ACTION,
                format!(
                    "[{rname}] Error performing action \"{name}\" on virtual machine [{id}]. This action is not available for state {}",
                    state_str(state, lcm)
                ),
                -1,
            ),
            (Err(ActionError::WrongState), Dialect::One5 | Dialect::One7) => self.failure(
                ACTION,
                format!(
                    "[{rname}] Error performing action \"{name}\": This action is not available for state {}",
                    state_str(state, lcm)
                ),
                -1,
            ),
            (Err(ActionError::NotSupported), Dialect::One32 | Dialect::One38) => self.failure(
                INTERNAL,
                format!("[{rname}] Internal error. Action result not defined"),
                -1,
            ),
            (Err(ActionError::NotSupported), Dialect::One4) => self.failure(
                ACTION,
                format!("[{rname}] Virtual machine action \"{name}\" is not supported"),
                -1,
            ),
            (Err(ActionError::NotSupported), Dialect::One5 | Dialect::One7) => self.failure(
                ACTION,
                format!("[{rname}] Action \"{name}\" is not supported"),
                -1,
            ),
        })
    }

    /// Adds `n` RUNNING VMs owned by `owner` built from `template` (allocated, deployed and
    /// booted at `now`); returns their ids.
    pub fn seed_vms(
        &mut self,
        now: f64,
        n: usize,
        owner: &str,
        template: &str,
    ) -> Result<Vec<i64>, LocalCloudError> {
        let attrs = template::parse(template).map_err(|e| LocalCloudError::InvalidOption {
            message: format!("seed template: {e}"),
        })?;
        let now = (now * 1e6) as i64;
        self.advance_us(now);
        let user = self.user(owner);
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.next_id;
            self.instantiate(id, &user, attrs.clone(), template.to_owned(), secs(now))
                .map_err(|message| LocalCloudError::InvalidOption {
                    message: format!("seeding VM {id}: {message}"),
                })?;
            self.next_id += 1;
            for ev in [Ev::Deploy(PROLOG), Ev::Boot(BOOT), Ev::Running] {
                self.apply(id, now, ev);
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Operator knob: VM `id` fails at `now` (Unix seconds) as when its prolog or boot script
    /// fails on the host — STATE FAILED, LCM_INIT, `TEMPLATE/ERROR = [ MESSAGE, TIMESTAMP ]`,
    /// history closed with REASON ERROR, leases kept (3.x keeps them until the VM is deleted).
    /// `false` when there is no such VM or it is DONE.
    pub fn fail_vm(&mut self, now: f64, id: i64, message: &str) -> bool {
        let now = (now * 1e6) as i64;
        self.advance_us(now);
        let t = secs(now);
        match self.vms.get(&id) {
            Some(vm) if vm.state != DONE => {}
            _ => return false,
        }
        self.plan(id, now, &[]);
        if let Some(vm) = self.vms.get_mut(&id) {
            vm.state = FAILED;
            vm.lcm = LCM_INIT;
            close_history(vm, t, REASON_ERROR);
            vm.template.retain(|(k, _)| k != "ERROR");
            vm.template.push((
                "ERROR".into(),
                TemplateValue::Vector(vec![
                    ("MESSAGE".into(), message.to_owned()),
                    ("TIMESTAMP".into(), t.to_string()),
                ]),
            ));
            vm.template.sort_by(|a, b| a.0.cmp(&b.0));
        }
        self.touch(id);
        true
    }

    /// The VMs that reached DONE since the last call (their site releases their disks).
    pub fn take_ended(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.ended)
    }

    /// What pdisk needs to know about VM `id`.
    pub fn vm_view(&self, id: i64) -> Option<VmView> {
        self.vms.get(&id).map(|vm| VmView {
            id,
            owner: vm.uname.clone(),
            host: vm.history.last().map(|h| h.hostname.clone()),
            running: vm.state == ACTIVE && vm.lcm == RUNNING,
        })
    }

    /// The template text VM `id` was allocated with.
    pub fn vm_template(&self, id: i64) -> Option<&str> {
        self.vms.get(&id).map(|vm| vm.raw_template.as_str())
    }

    /// Every VM id, DONE ones included, ascending.
    pub fn vm_ids(&self) -> Vec<i64> {
        self.vms.keys().copied().collect()
    }

    /// `(STATE, LCM_STATE)` of VM `id` at `now` (Unix seconds).
    pub fn vm_state(&mut self, now: f64, id: i64) -> Option<(i32, i32)> {
        self.advance(now);
        self.vms.get(&id).map(|vm| (vm.state, vm.lcm))
    }

    /// Appends VM `id`'s `<VM>` document, in its `one.vm.info` (`pool` false) or
    /// `one.vmpool.info` form; cached until the VM changes.
    fn render(&mut self, id: i64, pool: bool, out: &mut String) {
        let Some(vm) = self.vms.get_mut(&id) else {
            return;
        };
        let cached = if pool { &vm.pool_doc } else { &vm.info_doc };
        if cached.is_none() && self.dialect == Dialect::One7 {
            let mut text = String::with_capacity(4096);
            one7::write_vm(vm, !pool, &mut text);
            if pool {
                vm.pool_doc = Some(text);
            } else {
                vm.info_doc = Some(text);
            }
        }
        let cached = if pool { &vm.pool_doc } else { &vm.info_doc };
        if cached.is_none() {
            let doc = vm_doc(vm);
            let mut text = String::with_capacity(4096);
            if pool {
                vmxml::write_pool(std::iter::once(&doc), &mut text);
                // Keep the one <VM> between <VM_POOL> and </VM_POOL>.
                let inner = text
                    .strip_prefix("<VM_POOL>")
                    .and_then(|t| t.strip_suffix("</VM_POOL>"))
                    .unwrap_or_default()
                    .to_owned();
                vm.pool_doc = Some(inner);
            } else {
                vmxml::write_vm(&doc, &mut text);
                vm.info_doc = Some(text);
            }
        }
        let cached = if pool { &vm.pool_doc } else { &vm.info_doc };
        if let Some(doc) = cached {
            out.push_str(doc);
        }
    }
}

fn vm_doc(vm: &Vm) -> VmDoc {
    VmDoc {
        id: vm.id,
        uid: vm.uid,
        gid: vm.gid,
        uname: vm.uname.clone(),
        gname: vm.gname.clone(),
        name: vm.name.clone(),
        permissions: Permissions::default(),
        last_poll: vm.last_poll,
        state: vm.state,
        lcm_state: vm.lcm,
        resched: i32::from(vm.resched),
        stime: vm.stime,
        etime: vm.etime,
        deploy_id: vm.deploy_id.clone(),
        memory: 0,
        cpu: 0,
        net_tx: 0,
        net_rx: 0,
        template: vm.template.clone(),
        history: vm
            .history
            .iter()
            .map(|h| HistoryDoc {
                oid: vm.id,
                seq: h.seq,
                hostname: h.hostname.clone(),
                hid: h.hid,
                stime: h.stime,
                etime: h.etime,
                vmm_mad: "vmm_dummy".into(),
                vnm_mad: "dummy".into(),
                tm_mad: "dummy".into(),
                ds_location: Some("/var/lib/one//datastores".into()),
                ds_id: 0,
                pstime: h.pstime,
                petime: h.petime,
                rstime: h.rstime,
                retime: h.retime,
                estime: h.estime,
                eetime: h.eetime,
                reason: h.reason,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTION_ERRORS: &str =
        include_str!("../../tests/fixtures/opennebula-3.8.5/action-errors.txt");
    const TEMPLATE_1: &str =
        include_str!("../../tests/fixtures/opennebula-3.8.5/vm-template-1.txt");
    const VM_INFO_PENDING: &str =
        include_str!("../../tests/fixtures/opennebula-3.8.5/vm-info-pending.xml");
    const VM_INFO_RUNNING: &str = include_str!("../../tests/fixtures/opennebula-3.8.5/vm-info.xml");
    const VM_INFO_SOURCE_DISK: &str =
        include_str!("../../tests/fixtures/opennebula-3.8.5/vm-info-source-disk.xml");
    const SOURCE_DISK_ERROR: &str =
        include_str!("../../tests/fixtures/opennebula-3.8.5/vm-allocate-source-disk.txt");
    const AUTH_ERROR: &str =
        include_str!("../../tests/fixtures/localcloud/opennebula-3.8.5/auth-error.txt");
    const SYSTEM_VERSION: &str =
        include_str!("../../tests/fixtures/localcloud/opennebula-3.8.5/system-version.txt");
    const TRANSITIONS: &str =
        include_str!("../../tests/fixtures/localcloud/opennebula-3.8.5/state-transitions.json");

    /// The probe's allocation time in the capture (STIME 1795655396).
    const T0: f64 = 1_795_655_396.9;

    /// Python's `repr()` of a value, as the capture files hold replies.
    fn repr(value: &Value) -> String {
        match value {
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(i) => i.to_string(),
            Value::String(s) if s.contains('\'') && !s.contains('"') => format!("\"{s}\""),
            Value::String(s) => format!("'{}'", s.replace('\'', "\\'")),
            Value::Array(items) => format!(
                "[{}]",
                items.iter().map(repr).collect::<Vec<_>>().join(", ")
            ),
            other => format!("{other:?}"),
        }
    }

    fn fault_repr((code, message): &Fault) -> String {
        format!(
            "{{'fault': {code}, 'faultString': {}}}",
            repr(&Value::String(message.clone()))
        )
    }

    /// The capture line for `label` in action-errors.txt (text after the first ": ").
    fn captured(label: &str) -> &'static str {
        ACTION_ERRORS
            .lines()
            .find_map(|line| line.strip_prefix(label)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("no capture for {label}"))
    }

    /// The capture's site: network 0 `stratus-priv` 192.168.100.1-254 on br0, host `dummyhost`.
    fn capture_site(version: &str, step_ms: u64) -> ComputeState {
        ComputeState::new(
            version,
            ComputeOptions {
                boot_step: Duration::from_millis(step_ms),
                networks: vec![NetworkSpec {
                    name: "stratus-priv".into(),
                    first: Ipv4Addr::new(192, 168, 100, 1),
                    count: 254,
                    bridge: "br0".into(),
                }],
                hosts: vec!["dummyhost".into()],
                users: vec!["alice".into(), "bob".into()],
                plain: false,
            },
        )
        .unwrap()
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }
    const SESSION: &str = "oneadmin:password";

    fn call(c: &mut ComputeState, t: f64, method: &str, params: Vec<Value>) -> String {
        let mut all = vec![s(SESSION)];
        all.extend(params);
        match c.call(t, "oneadmin", method, &all) {
            Ok(v) => repr(&v),
            Err(f) => fault_repr(&f),
        }
    }

    fn act(c: &mut ComputeState, t: f64, action: &str, id: i64) -> String {
        call(c, t, "one.vm.action", vec![s(action), Value::Int(id)])
    }

    fn info(c: &mut ComputeState, t: f64, id: i64) -> String {
        match c.call(t, "oneadmin", "one.vm.info", &[s(SESSION), Value::Int(id)]) {
            Ok(Value::Array(items)) => items[1].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        }
    }

    /// Replaces every timestamp element's value by `T`.
    fn blank_times(doc: &str) -> String {
        let mut out = doc.to_owned();
        for tag in [
            "LAST_POLL",
            "STIME",
            "ETIME",
            "PSTIME",
            "PETIME",
            "RSTIME",
            "RETIME",
            "ESTIME",
            "EETIME",
        ] {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            let mut result = String::new();
            let mut rest = out.as_str();
            while let Some(i) = rest.find(&open) {
                let after = &rest[i + open.len()..];
                let j = after.find(&close).unwrap();
                result.push_str(&rest[..i + open.len()]);
                result.push('T');
                rest = &after[j..];
            }
            result.push_str(rest);
            out = result;
        }
        out
    }

    #[test]
    fn version_and_authentication_failure_match_the_captures() {
        let mut c = capture_site("3.8", 0);
        assert_eq!(
            call(&mut c, T0, "one.system.version", vec![]),
            SYSTEM_VERSION.trim()
        );
        let reply = c
            .authentication_failure("one.system.version", &[s("oneadmin:wrongpassword")])
            .unwrap();
        assert_eq!(repr(&reply), AUTH_ERROR.trim());
        let reply = c
            .authentication_failure("one.vm.info", &[s("oneadmin:bad"), Value::Int(0)])
            .unwrap();
        assert_eq!(repr(&reply), captured("vm.info bad session"));
        assert_eq!(
            c.authentication_failure("one.vm.nosuchmethod", &[s("x")]),
            Err((-506, "Method 'one.vm.nosuchmethod' not defined".into()))
        );
    }

    #[test]
    fn allocated_vm_documents_equal_the_captures_byte_for_byte() {
        let mut c = capture_site("3.8", 200);
        assert_eq!(
            call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]),
            "[True, 0, 0]"
        );
        assert_eq!(info(&mut c, T0, 0), VM_INFO_PENDING);
        // Deploy, boot and running at +0.2, +0.4, +0.6 s: all within second 1795655397.
        assert_eq!(info(&mut c, T0 + 0.6, 0), VM_INFO_RUNNING);
        assert_eq!(c.vm_template(0), Some(TEMPLATE_1));
        assert_eq!(
            c.vm_view(0),
            Some(VmView {
                id: 0,
                owner: "oneadmin".into(),
                host: Some("dummyhost".into()),
                running: true
            })
        );
    }

    #[test]
    fn source_disk_rules_follow_the_version() {
        let plain = "NAME = \"probe-vm-5\"\nCPU = 1\nMEMORY = 512\nDISK = [ SOURCE = \"https://marketplace.example.org/metadata/AbCdEf\", TARGET = \"hda\" ]\nNIC = [ NETWORK_ID = 0, IP = \"192.168.100.50\" ]\nCONTEXT = [ SSH_PUBLIC_KEY = \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 test@example.org\", TARGET = \"hdd\" ]\n";
        let fs = plain.replace(
            "TARGET = \"hda\" ]",
            "TARGET = \"hda\", TYPE = \"fs\", SIZE = 1024, FORMAT = \"ext3\" ]",
        );
        let mut c = capture_site("3.8", 0);
        for _ in 0..4 {
            call(
                &mut c,
                T0,
                "one.vm.allocate",
                vec![s("NAME=\"x\"\nMEMORY=64\nCPU=1")],
            );
        }
        assert_eq!(
            call(&mut c, T0, "one.vm.allocate", vec![s(plain)]),
            SOURCE_DISK_ERROR.trim()
        );
        // The failed allocation kept neither the id nor the requested lease.
        assert_eq!(
            call(&mut c, T0, "one.vm.allocate", vec![s(&fs)]),
            "[True, 4, 0]"
        );
        assert_eq!(
            blank_times(&info(&mut c, T0, 4)),
            blank_times(VM_INFO_SOURCE_DISK)
        );
        // StratusLab's 3.2 takes the SOURCE disk as it is.
        let mut c32 = capture_site("3.2", 0);
        assert_eq!(
            call(&mut c32, T0, "one.vm.allocate", vec![s(plain)]),
            "[True, 0, 0]"
        );
        assert!(info(&mut c32, T0, 0).contains(
            "<DISK><DEV_PREFIX><![CDATA[hd]]></DEV_PREFIX><DISK_ID><![CDATA[0]]></DISK_ID><SOURCE><![CDATA[https://marketplace.example.org/metadata/AbCdEf]]></SOURCE><TARGET><![CDATA[hda]]></TARGET></DISK>"
        ));
    }

    #[test]
    fn action_replies_match_action_errors_txt() {
        let mut c = capture_site("3.8", 0);
        let mut t = T0;
        let mut step = |c: &mut ComputeState| {
            t += 1.0;
            let _ = c.vm_state(t, 0);
            t
        };
        let mut pending = capture_site("3.8", 10_000);
        call(&mut pending, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(
            act(&mut pending, T0, "shutdown", 0),
            captured("shutdown on PENDING")
        );

        call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        for action in [
            "delete",
            "terminate",
            "terminate-hard",
            "shutdown-hard",
            "boot",
            "undeploy",
            "nonsense",
            "restart",
            "release",
            "resume",
            "reboot",
            "reset",
            "suspend",
        ] {
            let t = step(&mut c);
            assert_eq!(
                act(&mut c, t, action, 0),
                captured(&format!("{action} on RUNNING")),
                "{action}"
            );
        }
        let t = step(&mut c);
        assert_eq!(c.vm_state(t, 0), Some((SUSPENDED, LCM_INIT)));
        assert_eq!(act(&mut c, t, "resume", 0), captured("resume on SUSPENDED"));
        let t = step(&mut c);
        assert_eq!(
            act(&mut c, t, "poweroff", 0),
            captured("poweroff on RUNNING")
        );
        let t = step(&mut c);
        assert_eq!(c.vm_state(t, 0), Some((POWEROFF, LCM_INIT)));
        assert_eq!(act(&mut c, t, "resume", 0), captured("resume on POWEROFF"));
        assert_eq!(
            act(&mut c, t, "restart", 0),
            captured("restart on POWEROFF")
        );
        let t = step(&mut c);
        assert_eq!(act(&mut c, t, "stop", 0), captured("stop on RUNNING"));
        let t = step(&mut c);
        assert_eq!(act(&mut c, t, "resume", 0), captured("resume on STOPPED"));
        let t = step(&mut c);
        assert_eq!(
            act(&mut c, t, "shutdown", 0),
            captured("shutdown on RUNNING")
        );
        let t = step(&mut c);
        assert_eq!(act(&mut c, t, "shutdown", 0), captured("shutdown on DONE"));
        assert_eq!(act(&mut c, t, "finalize", 0), captured("finalize on DONE"));

        // VM 1: hold, release, cancel.
        let mut held = capture_site("3.8", 10_000);
        call(&mut held, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        call(&mut held, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(act(&mut held, T0, "hold", 1), captured("hold on PENDING"));
        assert_eq!(
            act(&mut held, T0, "release", 1),
            captured("release on HOLD")
        );
        let t = T0 + 40.0;
        assert_eq!(
            act(&mut held, t, "cancel", 1),
            captured("cancel on RUNNING")
        );
        assert_eq!(act(&mut held, t, "finalize", 0), "[True, 0, 0]");

        let t = step(&mut c);
        call(&mut c, t, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        call(&mut c, t, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(act(&mut c, t, "finalize", 1), "[True, 1, 0]");
        assert_eq!(act(&mut c, t, "resubmit", 2), "[True, 2, 0]");
    }

    #[test]
    fn other_errors_match_action_errors_txt() {
        let mut c = capture_site("3.8", 0);
        call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(
            call(&mut c, T0, "one.vm.info", vec![Value::Int(9999)]),
            captured("vm.info nonexistent")
        );
        assert_eq!(
            call(&mut c, T0, "one.vm.action", vec![s("shutdown"), s("0")]),
            captured("vm.action as string id")
        );
        assert_eq!(
            call(
                &mut c,
                T0,
                "one.vm.action",
                vec![s("shutdown"), Value::Int(9999)]
            ),
            captured("vm.action nonexistent")
        );
        assert_eq!(
            call(
                &mut c,
                T0,
                "one.vm.allocate",
                vec![s("NAME = \"x\"\nDISK = [ broken")]
            ),
            captured("vm.allocate syntax error")
        );
        assert_eq!(
            call(
                &mut c,
                T0,
                "one.vm.allocate",
                vec![s("NAME=\"x\"\nMEMORY=64\nCPU=1\nDISK=[IMAGE_ID=999]")]
            ),
            captured("vm.allocate unknown image")
        );
        assert_eq!(
            call(&mut c, T0, "one.vm.allocate", vec![]),
            captured("vm.allocate wrong arity")
        );
        assert_eq!(
            call(
                &mut c,
                T0,
                "one.vm.allocate",
                vec![s("NAME=\"y\"\nMEMORY=64\nCPU=1"), Value::Bool(false)]
            ),
            "[True, 1, 0]"
        );
        assert_eq!(
            call(&mut c, T0, "one.vm.nosuchmethod", vec![Value::Int(1)]),
            captured("unknown method")
        );
        assert_eq!(
            call(
                &mut c,
                T0,
                "one.vmpool.info",
                vec![Value::Int(-2), Value::Int(-1)]
            ),
            captured("vmpool.info 3-arg")
        );
        assert_eq!(
            c.call(
                T0,
                "oneadmin",
                "one.vm.info",
                &[Value::Int(1), Value::Int(0)]
            ),
            Err((
                -501,
                "Parameter that is supposed to be a string is not".into()
            ))
        );
    }

    /// (STATE, LCM_STATE) after each `boot_step` following `action` on VM 0.
    fn sequence(c: &mut ComputeState, t: &mut f64, action: &str, steps: usize) -> Vec<(i32, i32)> {
        let reply = act(c, *t, action, 0);
        assert!(reply.starts_with("[True"), "{action}: {reply}");
        let mut seen = vec![c.vm_state(*t, 0).unwrap()];
        for _ in 0..steps {
            *t += 1.0;
            seen.push(c.vm_state(*t, 0).unwrap());
        }
        seen
    }

    #[test]
    fn state_sequences_follow_the_capture() {
        // Every state polled in state-transitions.json is in these sequences, and the sub-step
        // ones (PROLOG, BOOT, EPILOG, EPILOG_STOP) come from state-transitions-vmlog.txt.
        let polled: serde_json::Value = serde_json::from_str(TRANSITIONS).unwrap();
        let seen_in = |label: &str| -> Vec<(i32, i32)> {
            polled
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["label"] == label)
                .unwrap()["seen"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s[1].as_i64().unwrap() as i32, s[2].as_i64().unwrap() as i32))
                .collect()
        };
        let mut c = capture_site("3.8", 1000);
        let mut t = T0;
        call(&mut c, t, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        let mut boot = vec![c.vm_state(t, 0).unwrap()];
        for _ in 0..3 {
            t += 1.0;
            boot.push(c.vm_state(t, 0).unwrap());
        }
        assert_eq!(boot, [(1, 0), (3, 1), (3, 2), (3, 3)]);
        let ends = |v: &[(i32, i32)]| vec![v[0], v[v.len() - 1]];
        assert_eq!(ends(&boot), seen_in("allocate->scheduler deploy"));

        assert_eq!(sequence(&mut c, &mut t, "reboot", 1), [(3, 3), (3, 3)]);
        let suspend = sequence(&mut c, &mut t, "suspend", 1);
        assert_eq!(suspend, seen_in("suspend"));
        assert_eq!(
            sequence(&mut c, &mut t, "resume", 1),
            seen_in("resume from SUSPENDED")
        );
        assert_eq!(sequence(&mut c, &mut t, "poweroff", 1), seen_in("poweroff"));
        assert_eq!(
            sequence(&mut c, &mut t, "restart", 1),
            seen_in("restart from POWEROFF")
        );
        assert_eq!(
            sequence(&mut c, &mut t, "stop", 2),
            [(3, 5), (3, 10), (4, 0)]
        );
        assert_eq!(ends(&[(3, 5), (4, 0)]), seen_in("stop"));
        let resume = sequence(&mut c, &mut t, "resume", 3);
        assert_eq!(resume, [(1, 0), (3, 9), (3, 2), (3, 3)]);
        assert_eq!(
            vec![resume[0], resume[1], resume[3]],
            seen_in("resume from STOPPED (needs scheduler)")
        );
        let shutdown = sequence(&mut c, &mut t, "shutdown", 2);
        assert_eq!(shutdown, [(3, 12), (3, 11), (6, 0)]);
        assert_eq!(ends(&shutdown), seen_in("shutdown"));

        // History as vm-info-done.xml shows it: one record per placement, the last one closed.
        let done = info(&mut c, t, 0);
        assert_eq!(done.matches("<HISTORY>").count(), 4);
        assert!(done.contains("<STATE>6</STATE><LCM_STATE>0</LCM_STATE>"));
        assert!(!done.contains("<ETIME>0</ETIME></VM>"));

        let mut c = capture_site("3.8", 1000);
        let mut t = T0;
        call(&mut c, t, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(sequence(&mut c, &mut t, "hold", 1), [(2, 0), (2, 0)]);
        assert_eq!(
            sequence(&mut c, &mut t, "release", 3),
            [(1, 0), (3, 1), (3, 2), (3, 3)]
        );
        let cancel = sequence(&mut c, &mut t, "cancel", 2);
        assert_eq!(cancel, [(3, 13), (3, 11), (6, 0)]);
        assert_eq!(ends(&cancel), seen_in("cancel"));
    }

    #[test]
    fn boot_step_zero_is_running_at_once_and_done_releases_the_lease() {
        let mut c = capture_site("3.8", 0);
        call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(c.vm_state(T0, 0), Some((ACTIVE, RUNNING)));
        assert_eq!(act(&mut c, T0, "finalize", 0), "[True, 0, 0]");
        assert_eq!(c.vm_state(T0, 0), Some((DONE, LCM_INIT)));
        call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        // The lease of VM 0 was given back and VM 1 got the next address.
        assert!(info(&mut c, T0, 1).contains("<IP><![CDATA[192.168.100.2]]></IP>"));
    }

    fn pool_ids(
        c: &mut ComputeState,
        user: &str,
        filter: i64,
        start: i64,
        end: i64,
        state: i64,
    ) -> Vec<i64> {
        let params = [
            s("u:p"),
            Value::Int(filter),
            Value::Int(start),
            Value::Int(end),
            Value::Int(state),
        ];
        let Ok(Value::Array(items)) = c.call(T0, user, "one.vmpool.info", &params) else {
            panic!()
        };
        let doc = items[1].as_str().unwrap();
        doc.match_indices("<VM><ID>")
            .map(|(i, _)| {
                let rest = &doc[i + 8..];
                rest[..rest.find('<').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn pool_filters_users_ids_and_states() {
        let mut c = capture_site("3.8", 0);
        let tpl = s("NAME=\"x\"\nMEMORY=64\nCPU=1");
        for user in ["alice", "alice", "bob", "oneadmin", "alice"] {
            c.call(T0, user, "one.vm.allocate", &[s("u:p"), tpl.clone()])
                .unwrap();
        }
        c.call(
            T0,
            "alice",
            "one.vm.action",
            &[s("u:p"), s("finalize"), Value::Int(1)],
        )
        .unwrap();
        assert_eq!(pool_ids(&mut c, "alice", -3, -1, -1, -1), [0, 4]);
        assert_eq!(pool_ids(&mut c, "alice", -2, -1, -1, -1), [0, 4]);
        assert_eq!(pool_ids(&mut c, "alice", -1, -1, -1, -1), [0, 4]);
        assert_eq!(pool_ids(&mut c, "alice", -2, -1, -1, -2), [0, 1, 4]);
        assert_eq!(pool_ids(&mut c, "alice", -2, -1, -1, 6), [1]);
        assert_eq!(pool_ids(&mut c, "oneadmin", -2, -1, -1, -1), [0, 2, 3, 4]);
        assert_eq!(pool_ids(&mut c, "oneadmin", 2, -1, -1, -1), [2]);
        assert_eq!(pool_ids(&mut c, "alice", 2, -1, -1, -1), Vec::<i64>::new());
        assert_eq!(pool_ids(&mut c, "oneadmin", -2, 2, -1, -2), [2, 3, 4]);
        assert_eq!(pool_ids(&mut c, "oneadmin", -2, 1, 3, -2), [1, 2, 3]);
        assert_eq!(pool_ids(&mut c, "oneadmin", -2, -1, 3, -2), [0, 1, 2, 3, 4]);
        let bad_state = c.call(
            T0,
            "alice",
            "one.vmpool.info",
            &[
                s("u:p"),
                Value::Int(-2),
                Value::Int(-1),
                Value::Int(-1),
                Value::Int(8),
            ],
        );
        assert_eq!(
            repr(&bad_state.unwrap()),
            "[False, '[VirtualMachinePoolInfo] Incorrect filter_flag, state', 4096]"
        );
        // Other users' VMs are not theirs to see or touch.
        let reply = c
            .call(T0, "bob", "one.vm.info", &[s("u:p"), Value::Int(0)])
            .unwrap();
        assert_eq!(
            repr(&reply),
            "[False, '[VirtualMachineInfo] User [2] : Not authorized to perform USE VM [0].', 512]"
        );
    }

    #[test]
    fn version_knobs_change_names_and_messages() {
        let mut c = capture_site("3.2", 0);
        assert_eq!(
            call(&mut c, T0, "one.system.version", vec![]),
            "{'fault': -506, 'faultString': \"Method 'one.system.version' not defined\"}"
        );
        call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(
            act(&mut c, T0, "poweroff", 0),
            "[False, '[VirtualMachineAction] Internal error. Action result not defined', 8192]"
        );

        let mut c = capture_site("4.x", 0);
        assert_eq!(
            call(&mut c, T0, "one.system.version", vec![]),
            "[True, '4.14.2', 0]"
        );
        call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(
            act(&mut c, T0, "resume", 0),
            "[False, '[VirtualMachineAction] Error performing action \"resume\" on virtual machine [0]. This action is not available for state RUNNING', 2048]"
        );
        assert_eq!(
            act(&mut c, T0, "terminate", 0),
            "[False, '[VirtualMachineAction] Virtual machine action \"terminate\" is not supported', 2048]"
        );
        assert_eq!(act(&mut c, T0, "undeploy", 0), "[True, 0, 0]");
        assert_eq!(c.vm_state(T0, 0), Some((UNDEPLOYED, LCM_INIT)));
        assert_eq!(act(&mut c, T0, "resume", 0), "[True, 0, 0]");
        assert_eq!(act(&mut c, T0, "delete", 0), "[True, 0, 0]");
        assert_eq!(c.vm_state(T0, 0), Some((DONE, LCM_INIT)));

        let mut c = capture_site("5.x", 0);
        assert_eq!(
            call(&mut c, T0, "one.system.version", vec![]),
            "[True, '5.12.0', 0]"
        );
        call(&mut c, T0, "one.vm.allocate", vec![s(TEMPLATE_1)]);
        assert_eq!(
            call(&mut c, T0, "one.vm.info", vec![Value::Int(7)]),
            "[False, '[one.vm.info] Error getting virtual machine [7].', 1024, 7, 0]"
        );
        assert_eq!(
            act(&mut c, T0, "finalize", 0),
            "[False, '[one.vm.action] Action \"finalize\" is not supported', 2048, -1, 0]"
        );
        assert_eq!(
            act(&mut c, T0, "hold", 0),
            "[False, '[one.vm.action] Error performing action \"hold\": This action is not available for state RUNNING', 2048, -1, 0]"
        );
        assert_eq!(act(&mut c, T0, "poweroff", 0), "[True, 0, 0]");
        assert_eq!(act(&mut c, T0, "resume", 0), "[True, 0, 0]");
        assert_eq!(act(&mut c, T0, "terminate-hard", 0), "[True, 0, 0]");
        assert_eq!(c.vm_state(T0, 0), Some((DONE, LCM_INIT)));
        assert!(ComputeState::new("2.0", ComputeOptions::default()).is_err());
        assert_eq!(
            Dialect::parse("3.8.4"),
            Some((Dialect::One38, "3.8.4".into()))
        );
    }

    #[test]
    fn nic_errors_and_context_variables() {
        let mut c = ComputeState::new("3.8", ComputeOptions::default()).unwrap();
        let reply = c
            .call(
                T0,
                "alice",
                "one.vm.allocate",
                &[s("u:p"), s("NIC = [ NETWORK = \"public\" ]")],
            )
            .unwrap();
        assert_eq!(
            repr(&reply),
            "[False, '[VirtualMachineAllocate] Error allocating a new virtual machine. User 1 does not own a network with name: public . Set NETWORK_UNAME or NETWORK_UID of owner in NIC.', 8192]"
        );
        let tpl = "NIC = [ NETWORK = \"public\", NETWORK_UNAME = \"oneadmin\" ]\nCONTEXT = [ IP = \"$NIC[IP, NETWORK=\\\"public\\\"]\", N = \"$NAME\", X = \"$NOPE\" ]";
        let reply = c
            .call(T0, "alice", "one.vm.allocate", &[s("u:p"), s(tpl)])
            .unwrap();
        assert_eq!(repr(&reply), "[True, 0, 0]");
        let doc = match c
            .call(T0, "alice", "one.vm.info", &[s("u:p"), Value::Int(0)])
            .unwrap()
        {
            Value::Array(items) => items[1].as_str().unwrap().to_owned(),
            _ => panic!(),
        };
        assert!(doc.contains("<CONTEXT><DISK_ID><![CDATA[0]]></DISK_ID><IP><![CDATA[192.0.2.10]]></IP><N><![CDATA[one-0]]></N><X/></CONTEXT>"), "{doc}");
        assert!(doc.contains("<UNAME>alice</UNAME><GNAME>users</GNAME>"));
    }

    #[test]
    fn seeding_ten_thousand_vms_is_fast_and_pools_render() {
        let mut c = ComputeState::new("3.8", ComputeOptions::default()).unwrap();
        let tpl = "CPU = 0.5\nMEMORY = 256\nDISK = [ IMAGE_ID = 0, TARGET = \"hda\" ]\nNIC = [ NETWORK = \"private\", NETWORK_UNAME = \"oneadmin\" ]\nCONTEXT = [ HOSTNAME = \"$NAME\", TARGET = \"hdc\" ]";
        let started = std::time::Instant::now();
        let ids = c.seed_vms(T0, 10_000, "alice", tpl).unwrap();
        assert_eq!(ids.len(), 10_000);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(c.vm_state(T0, 9_999), Some((ACTIVE, RUNNING)));
        let params = [
            s("u:p"),
            Value::Int(-3),
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(-1),
        ];
        let Ok(Value::Array(items)) = c.call(T0, "alice", "one.vmpool.info", &params) else {
            panic!()
        };
        let pool = items[1].as_str().unwrap();
        assert_eq!(pool.matches("<VM><ID>").count(), 10_000);
        assert!(pool.contains("<HOSTNAME>dummyhost</HOSTNAME>"));
    }

    #[test]
    fn a_failed_vm_is_state_7_with_its_error_and_stays_listed() {
        let mut c = ComputeState::new("3.8", ComputeOptions::default()).unwrap();
        let tpl = "CPU = 1\nMEMORY = 256\nDISK = [ IMAGE_ID = 0, TARGET = \"hda\" ]";
        let ids = c.seed_vms(T0, 1, "alice", tpl).unwrap();
        assert!(c.fail_vm(T0 + 1.0, ids[0], "Error executing image transfer script"));
        assert_eq!(c.vm_state(T0 + 1.0, ids[0]), Some((FAILED, LCM_INIT)));
        let doc = info(&mut c, T0 + 1.0, ids[0]);
        assert!(
            doc.contains(
                "<ERROR><MESSAGE><![CDATA[Error executing image transfer script]]></MESSAGE>"
            ),
            "{doc}"
        );
        assert!(doc.contains("<REASON>1</REASON>"), "{doc}");
        assert!(!c.fail_vm(T0 + 1.0, 99, "x"));
        assert_eq!(
            act(&mut c, T0 + 2.0, "finalize", ids[0]),
            format!("[True, {}, 0]", ids[0])
        );
        assert!(!c.fail_vm(T0 + 2.0, ids[0], "x"), "a DONE VM cannot fail");
    }
}
