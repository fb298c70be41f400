//! Nodes: listing (streamed per site, with their pdisk mounts), one node, actions, create.

use super::*;

/// What [`Driver::stream_nodes`] sends; `site` numbers the sites of [`NodeStream::sites`].
#[derive(Debug)]
pub enum NodeEvent {
    /// More nodes of a site, in pool order.
    Records {
        site: usize,
        records: Vec<NodeRecord>,
    },
    /// Forget the nodes of the site sent so far (its whole list follows).
    Discard { site: usize },
    /// The site is complete, or failed.
    Done { site: usize, result: Result<()> },
    /// A site's pool, being read piece by piece: the receiver may read pieces itself
    /// ([`Work::read_one`]) when it has nothing else to do.
    Pieces(Arc<dyn Work>),
    /// The site's nodes are listed, but its volumes could not be read: their `volumes` are
    /// unknown (`None`).
    VolumesUnknown { site: usize, error: Error },
}

/// The sites a [`Driver::stream_nodes`] lists (in site order) and its events.
#[derive(Debug)]
pub struct NodeStream {
    pub sites: Vec<String>,
    pub events: tokio::sync::mpsc::UnboundedReceiver<NodeEvent>,
    /// Cancels the listing when dropped before its end.
    pub producer: AbortOnDrop,
}

/// A create with the caller's values checked and the image resolved ([`Driver::prepare_create`]):
/// only the node's name and client token remain to be rendered.
#[derive(Debug, Clone)]
pub struct PreparedCreate {
    pub spec: VmSpec,
    pub dialect: template::Dialect,
}

impl PreparedCreate {
    /// The allocate template of one node: its name and, as a top-level attribute that oned keeps
    /// (TEMPLATE on 3.x, USER_TEMPLATE from 4.0), its client token.
    pub fn render(&self, name: &str, token: &str) -> Result<String> {
        check_node_name(name)?;
        let mut spec = self.spec.clone();
        name.clone_into(&mut spec.name);
        spec.raw_extra
            .push((crate::fleet::TOKEN_ATTRIBUTE.to_owned(), token.to_owned()));
        template::render_for(&spec, self.dialect).map_err(|e| Error::invalid(e.to_string()))
    }
}

/// A node name OpenNebula keeps as given.
pub fn check_node_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("node name must not be empty"));
    }
    if name.trim() != name {
        return Err(Error::invalid(format!(
            "node name {name:?} starts or ends with white space, which OpenNebula's VM listing does not keep"
        )));
    }
    Ok(())
}

/// What a `create_node` needs besides the site.
#[derive(Debug, Clone, Default)]
pub struct CreateNode {
    pub name: String,
    pub size_name: String,
    pub cpu: u32,
    pub ram_mib: u64,
    pub swap_mib: u64,
    pub image: String,
    pub public_key: Option<String>,
    pub public_key_file: Option<String>,
    pub network: Option<String>,
    pub context: Vec<(String, String)>,
    pub disks_bus: Option<String>,
    pub volatile_disk_gib: Option<u32>,
}

/// Node actions of the libcloud API, and `ex_recover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    Destroy,
    Reboot,
    Stop,
    Start,
    Recover(RecoverOp),
}

/// The operations of `one.vm.recover` (OpenNebula 7.4's src/rm/api/VirtualMachineAPI.cc,
/// 4.x/5.x's src/rm/RequestManagerVirtualMachine.cc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverOp {
    /// The pending driver action failed (0).
    Failure,
    /// The pending driver action succeeded (1).
    Success,
    /// Retry the failed or pending driver action (2).
    Retry,
    /// Delete the VM, running its epilog (3).
    Delete,
    /// Delete the VM's resources and put it back in PENDING, same id (4).
    DeleteRecreate,
    /// Delete the VM from the database only, no driver action (5).
    DeleteDb,
}

impl RecoverOp {
    pub const ALL: [RecoverOp; 6] = [
        RecoverOp::Failure,
        RecoverOp::Success,
        RecoverOp::Retry,
        RecoverOp::Delete,
        RecoverOp::DeleteRecreate,
        RecoverOp::DeleteDb,
    ];

    /// The name `onevm recover` uses (`--failure`, `--success`, `--retry`, `--delete`,
    /// `--recreate` is `delete-recreate`, `--delete-db`).
    pub fn name(self) -> &'static str {
        match self {
            RecoverOp::Failure => "failure",
            RecoverOp::Success => "success",
            RecoverOp::Retry => "retry",
            RecoverOp::Delete => "delete",
            RecoverOp::DeleteRecreate => "delete-recreate",
            RecoverOp::DeleteDb => "delete-db",
        }
    }

    pub fn parse(name: &str) -> Result<RecoverOp> {
        RecoverOp::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = RecoverOp::ALL.iter().map(|op| op.name()).collect();
                Error::invalid(format!(
                    "unknown recover operation {name:?} (one of {})",
                    names.join(", ")
                ))
            })
    }

    /// The first OpenNebula (major, minor) whose `one.vm.recover` has this operation: 4.2
    /// success/failure, 4.14 retry, 5.0 delete and delete-recreate, 5.8 delete-db.
    pub fn since(self) -> (u32, u32) {
        match self {
            RecoverOp::Failure | RecoverOp::Success => (4, 2),
            RecoverOp::Retry => (4, 14),
            RecoverOp::Delete | RecoverOp::DeleteRecreate => (5, 0),
            RecoverOp::DeleteDb => (5, 8),
        }
    }

    /// `one.vm.recover`'s second parameter on a daemon of `version`; `None` when that version
    /// has no such operation ([`RecoverOp::since`]). 4.2–4.12 take a boolean (success or
    /// failure), 4.14 and later the operation's code (0–5, in [`RecoverOp::ALL`]'s order).
    pub fn param(self, version: Version) -> Option<crate::xmlrpc::Value> {
        use crate::xmlrpc::Value;
        let at = (version.major, version.minor);
        if at < self.since() {
            return None;
        }
        if at < (4, 14) {
            return Some(Value::Bool(self == RecoverOp::Success));
        }
        let code = RecoverOp::ALL.iter().position(|op| *op == self)?;
        i64::try_from(code).ok().map(Value::Int)
    }
}

impl NodeAction {
    pub fn parse(name: &str) -> Result<NodeAction> {
        Ok(match name {
            "destroy" => NodeAction::Destroy,
            "reboot" => NodeAction::Reboot,
            "stop" => NodeAction::Stop,
            "start" => NodeAction::Start,
            other if other.starts_with("recover:") => {
                NodeAction::Recover(RecoverOp::parse(&other["recover:".len()..])?)
            }
            other => return Err(Error::invalid(format!("unknown node action '{other}'"))),
        })
    }
    pub(super) fn label(self) -> &'static str {
        match self {
            NodeAction::Destroy => "destroy_node",
            NodeAction::Reboot => "reboot_node",
            NodeAction::Stop => "stop_node",
            NodeAction::Start => "start_node",
            NodeAction::Recover(_) => "ex_recover",
        }
    }
}

/// The OpenNebula action name for a libcloud action, given the site's version and, for `start`,
/// the VM's current STATE. `None` = not possible on that version.
pub fn action_name(action: NodeAction, version: Version, state: i32) -> Option<&'static str> {
    let v38 = (version.major, version.minor) >= (3, 8);
    match (action, version.major) {
        (NodeAction::Destroy, 0..=3) => Some("finalize"),
        (NodeAction::Destroy, 4) => Some("delete"),
        (NodeAction::Destroy, _) => Some("terminate-hard"),
        // Every OpenNebula daemon has `reboot`, 3.2.1's included (its VirtualMachineAction).
        (NodeAction::Reboot, _) => Some("reboot"),
        (NodeAction::Stop, _) if v38 => Some("poweroff"),
        (NodeAction::Stop, _) => Some("stop"),
        // POWEROFF (8): 3.8 wants `restart`, 4.x and later `resume`.
        (NodeAction::Start, 3) if state == 8 => Some("restart"),
        (NodeAction::Start, _) => Some("resume"),
        (NodeAction::Recover(_), _) => None,
    }
}

/// The disk target prefix of a bus (spec §3.5).
pub(super) fn bus_prefix(bus: &str) -> Result<&'static str> {
    match bus.to_ascii_lowercase().as_str() {
        "ide" => Ok("hd"),
        "scsi" => Ok("sd"),
        "virtio" => Ok("vd"),
        other => Err(Error::invalid(format!(
            "Unknown disks bus type '{other}' (ide, scsi or virtio)"
        ))),
    }
}

pub(super) fn expand_home(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", std::env::var("HOME").unwrap_or_default()),
        None => path.to_owned(),
    }
}

impl Driver {
    /// `list_nodes`: every selected site concurrently: the records of
    /// [`stream_nodes`](Self::stream_nodes), collected by the one node listing
    /// ([`NodeCollector`]) and finished with its per-site rules.
    pub async fn list_nodes(
        self: &Arc<Self>,
        site: Option<&str>,
        with_volumes: bool,
        strict: bool,
    ) -> Result<NodesListed<NodeRecord>> {
        let NodeStream {
            sites,
            mut events,
            producer: _producer,
        } = self.stream_nodes(site, with_volumes)?;
        let mut listing = NodeCollector::new(&sites);
        let mut keep = |records: Vec<NodeRecord>, out: &mut Vec<NodeRecord>| {
            out.extend(records);
            Ok::<(), std::convert::Infallible>(())
        };
        while let Some(event) = events.recv().await {
            // The blocking reader reads every piece itself: nothing to help with here.
            let Ok(_pieces) = listing.take(event, &mut keep);
        }
        listing.finish(strict)
    }

    /// `list_nodes` as a stream: every selected site is listed concurrently and its nodes are
    /// sent as they are read from the reply, piece by piece, in pool order, while the rest is
    /// read (so the receiver can build its objects meanwhile). Each site ends with one
    /// [`NodeEvent::Done`]; a site whose events stop without one failed inside (a bug).
    /// Without `with_volumes`, pdisk is not asked and every node's `volumes` is unknown.
    pub fn stream_nodes(
        self: &Arc<Self>,
        site: Option<&str>,
        with_volumes: bool,
    ) -> Result<NodeStream> {
        let indices: Vec<usize> = match site {
            Some(name) => vec![self.site_index(name)?],
            None => (0..self.sites.len()).collect(),
        };
        let sites = indices
            .iter()
            .map(|&i| self.sites[i].name.clone())
            .collect();
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let driver = Arc::clone(self);
        let producer = crate::runtime::spawn(async move {
            join_all(indices.into_iter().enumerate().map(|(n, i)| {
                let tx = tx.clone();
                let driver = Arc::clone(&driver);
                async move {
                    let result = driver.stream_site_nodes(n, i, with_volumes, &tx).await;
                    // The receiver may be gone (the caller stopped); nothing to tell then.
                    let _ = tx.send(NodeEvent::Done { site: n, result });
                }
            }))
            .await;
        })?;
        Ok(NodeStream {
            sites,
            events,
            producer: AbortOnDrop(producer.abort_handle()),
        })
    }

    /// One site of [`stream_nodes`](Self::stream_nodes): the pool reply and the volume mounts
    /// are fetched together, then the reply is read on a blocking thread, which sends the
    /// nodes piece by piece ([`read_pool_reply`]).
    pub(super) async fn stream_site_nodes(
        self: &Arc<Self>,
        n: usize,
        index: usize,
        with_volumes: bool,
        tx: &tokio::sync::mpsc::UnboundedSender<NodeEvent>,
    ) -> Result<()> {
        let site = &self.sites[index];
        let mounts = async {
            if with_volumes {
                Some(self.site_mounts(site, "list_nodes").await)
            } else {
                None
            }
        };
        let (reply, mounts) = tokio::join!(
            site.one.vm_pool_reply(POOL_MINE, POOL_STATE_NOT_DONE),
            mounts
        );
        let body = reply.at(site, Service::Compute, "list_nodes (one.vmpool.info)")?;
        let by_vm = match mounts {
            Some(Ok(by_vm)) => Some(by_vm),
            Some(Err(error)) => {
                // The receiver may be gone (the caller stopped): nothing to tell then.
                let _ = tx.send(NodeEvent::VolumesUnknown { site: n, error });
                None
            }
            None => None,
        };
        let driver = Arc::clone(self);
        let out = tx.clone();
        // The receiver may be gone (the caller stopped): nothing to tell then.
        let emit: PoolSink = Arc::new(move |piece| {
            let event = match piece {
                PoolPiece::Records(vms) => {
                    let site = &driver.sites[index];
                    let records = vms
                        .into_iter()
                        .map(|vm| {
                            let mut r = site_node_record(site, vm, &driver.instance_types);
                            apply_mounts(&mut r, by_vm.as_ref());
                            r
                        })
                        .collect();
                    NodeEvent::Records { site: n, records }
                }
                PoolPiece::Discard => NodeEvent::Discard { site: n },
            };
            let _ = out.send(event);
        });
        let tx = tx.clone();
        let driver = Arc::clone(self);
        let read = tokio::task::spawn_blocking(move || {
            let body = read_pool_reply(body, emit, &mut |pieces| {
                let _ = tx.send(NodeEvent::Pieces(pieces));
            })?;
            driver.sites[index].one.recycle(body);
            Ok::<(), crate::one::client::OneError>(())
        });
        match read.await {
            Ok(result) => result.at(site, Service::Compute, "list_nodes (one.vmpool.info)"),
            Err(e) => Err(Error::internal(format!(
                "site '{}': reading the node list failed: {e}",
                site.name
            ))),
        }
    }

    /// The caller's mounted disks by VM (uuid → device); any pdisk failure makes them unknown
    /// (the error names `operation`).
    pub(super) async fn site_mounts(&self, site: &Site, operation: &str) -> Result<MountsByVm> {
        if site.kind == SiteKind::OpenNebula {
            // Plain sites have no pdisk: their volumes are images, attached as VM disks.
            return Ok(MountsByVm::new());
        }
        let context = |op: &str| site.context(Service::Pdisk, op);
        let disks = site.pdisk.list().await.at(
            site,
            Service::Pdisk,
            &format!("{operation} (GET /disks/)"),
        )?;
        let mounted: Vec<_> = disks.into_iter().filter(|d| d.count > 0).collect();
        let all = join_all(mounted.iter().map(|d| site.pdisk.mounts(&d.uuid))).await;
        let mut by_vm = MountsByVm::new();
        for (d, m) in mounted.iter().zip(all) {
            let mounts = match m {
                Ok(mounts) => mounts,
                // Deleted since it was listed: mounted nowhere.
                Err(e) if e.http_status() == Some(404) => Vec::new(),
                Err(e) => {
                    return Err(Error::remote(
                        context(&format!("{operation} (GET /disks/<uuid>/mounts)")),
                        e,
                    ))
                }
            };
            for m in mounts {
                by_vm
                    .entry(m.vm_id)
                    .or_default()
                    .insert(d.uuid.clone(), m.device);
            }
        }
        Ok(by_vm)
    }

    pub(crate) async fn vm(&self, site: &Site, vm_id: i64, operation: &str) -> Result<VmRecord> {
        let xml = site
            .one
            .vm_info(vm_id)
            .await
            .at(site, Service::Compute, operation)?;
        parse_vm(xml.as_bytes()).at(site, Service::Compute, operation)
    }

    /// `ex_get_node`: one VM by site-local id, its volumes read as `list_nodes` reads them; when
    /// pdisk fails they are unknown and its error comes second.
    pub async fn get_node(&self, site: &str, vm_id: i64) -> Result<(NodeRecord, Option<Error>)> {
        let s = self.site(site)?;
        let (vm, mounts) = tokio::join!(
            self.vm(s, vm_id, "ex_get_node (one.vm.info)"),
            self.site_mounts(s, "ex_get_node")
        );
        let mut record = site_node_record(s, vm?, &self.instance_types);
        let (mounts, error) = match mounts {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        apply_mounts(&mut record, mounts.as_ref());
        Ok((record, error))
    }

    /// `destroy_node`, `reboot_node`, `stop_node`, `start_node`: reads the VM first (a DONE VM
    /// is refused before any action is sent; `start` depends on the state), then one
    /// `one.vm.action` in the site version's vocabulary. `destroy_node` then releases the VM's
    /// pdisk mounts that are left; a failure there comes back (the node is destroyed).
    pub async fn node_action(
        &self,
        site: &str,
        vm_id: i64,
        action: NodeAction,
    ) -> Result<Option<Error>> {
        let s = self.site(site)?;
        let context = |op: &str| s.context(Service::Compute, op);
        let version = s.one.version().await.map_err(|e| {
            Error::remote(
                context(&format!("{} (one.system.version)", action.label())),
                e,
            )
        })?;
        if let NodeAction::Recover(op) = action {
            return self.recover(s, vm_id, op, version).await.map(|()| None);
        }
        let vm = self
            .vm(s, vm_id, &format!("{} (one.vm.info)", action.label()))
            .await?;
        if vm.state == VM_STATE_DONE {
            return Err(Error::state(
                context(&format!("{} (one.vm.info)", action.label())),
                format!(
                    "node {vm_id}@{} is already destroyed (OpenNebula state DONE): {} is not possible",
                    s.name,
                    action.label()
                ),
            ));
        }
        let name = action_name(action, version, vm.state).ok_or_else(|| {
            Error::unsupported(
                context(&format!("{} (one.vm.action)", action.label())),
                format!(
                    "{} is not supported by OpenNebula {version} (its one.vm.action has no such action)",
                    action.label()
                ),
            )
        })?;
        s.one.action(name, vm_id).await.map_err(|e| {
            Error::remote(
                context(&format!("{} (one.vm.action {name})", action.label())),
                e,
            )
        })?;
        if action != NodeAction::Destroy {
            return Ok(None);
        }
        Ok(self.release_mounts(s, vm_id).await.err())
    }

    /// `ex_recover`: one `one.vm.recover` in the version's form, without reading the VM first
    /// (the daemon's own state rules decide: on 7.4 `delete` of a DONE VM is a no-op, `failure`
    /// of one is refused). A version without the operation is refused before anything is sent.
    async fn recover(&self, s: &Site, vm_id: i64, op: RecoverOp, version: Version) -> Result<()> {
        let operation = format!("ex_recover (one.vm.recover {})", op.name());
        let param = op.param(version).ok_or_else(|| {
            Error::unsupported(
                s.context(Service::Compute, &operation),
                {
                    let (major, minor) = op.since();
                    format!(
                        "recover operation {:?} is not supported by OpenNebula {version} (one.vm.recover has it from {major}.{minor})",
                        op.name(),
                    )
                },
            )
        })?;
        crate::one::pools::vm_recover(&s.one, vm_id, param)
            .await
            .at(s, Service::Compute, &operation)
    }

    /// Removes every pdisk mount of VM `vm_id` (after `destroy_node`: a site whose epilog
    /// released them already leaves nothing to do).
    pub(super) async fn release_mounts(&self, s: &Site, vm_id: i64) -> Result<()> {
        let by_vm = self.site_mounts(s, "destroy_node").await?;
        let Some(volumes) = by_vm.get(&vm_id) else {
            return Ok(());
        };
        for uuid in volumes.keys() {
            match s.pdisk.detach(uuid, vm_id).await {
                Ok(_) => {}
                // Released meanwhile (by the site's epilog).
                Err(e) if e.http_status() == Some(404) => {}
                Err(e) => {
                    return Err(Error::remote(
                        s.context(
                            Service::Pdisk,
                            "destroy_node (DELETE /disks/<uuid>/mounts/<id>)",
                        ),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    /// `create_node`: checks every caller value (name, key, context, size, network, bus, client
    /// token) by rendering the template before any request, resolves the image, renders for the
    /// site's version with the client token, allocates exactly once ([`crate::fleet`]: a lost
    /// reply is resolved by looking the token up) and reads the VM back (its IP is leased
    /// already).
    pub async fn create_node(
        &self,
        site: &str,
        req: CreateNode,
        token: Option<String>,
        options: &crate::fleet::CreateOptions,
    ) -> Result<NodeRecord> {
        let s = self.site(site)?;
        if s.kind == SiteKind::OpenNebula {
            return self.plain_create_node(s, req).await;
        }
        let given = token.is_some();
        let token = crate::fleet::token_or_new(token)?;
        let prepared = self.prepare_create(s, &req).await?;
        crate::fleet::create_one(self, s, &prepared, &req.name, &token, given, options).await
    }

    /// Everything of a create that does not depend on the node's name and token: the caller's
    /// values checked, the image resolved, the site's template dialect.
    pub(crate) async fn prepare_create(
        &self,
        s: &Site,
        req: &CreateNode,
    ) -> Result<PreparedCreate> {
        check_node_name(&req.name)?;
        if req.cpu == 0 || req.ram_mib == 0 {
            return Err(Error::invalid(format!(
                "size '{}' has no CPU or RAM",
                req.size_name
            )));
        }
        let public_key = self.public_key(s, req)?;
        let network = req.network.clone().unwrap_or_else(|| "public".to_owned());
        if !matches!(network.as_str(), "public" | "private" | "local") {
            return Err(Error::invalid(format!(
                "unknown network '{network}' (public, private or local)"
            )));
        }
        let chosen_bus = req
            .disks_bus
            .clone()
            .or(s.settings.get("vm_disks_bus").map(str::to_owned));
        if let Some(bus) = &chosen_bus {
            bus_prefix(bus)?;
        }
        let cloud_init = s
            .settings
            .get("default_context_method")
            .map(|m| m.trim().eq_ignore_ascii_case("cloud-init"))
            .unwrap_or(false);
        let mut context = Vec::new();
        if cloud_init {
            use base64::Engine as _;
            context.push(("CONTEXT_METHOD".to_owned(), "cloud-init".to_owned()));
            context.push((
                "CLOUD_INIT_AUTHORIZED_KEYS".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(public_key.as_bytes()),
            ));
        }
        context.push(("public_key".to_owned(), public_key));
        context.extend(req.context.iter().cloned());
        let mut spec = VmSpec {
            name: req.name.clone(),
            cpu: f64::from(req.cpu),
            vcpu: req.cpu,
            memory_mib: req.ram_mib,
            // Placeholder until the image is resolved: the caller's values are checked below
            // before any request is sent.
            root_disk: RootDisk {
                source: "https://image.invalid/".to_owned(),
                target_prefix: "hd".to_owned(),
                driver: None,
                save: false,
            },
            swap_mib: (req.swap_mib > 0).then_some(req.swap_mib),
            extra_disks: req
                .volatile_disk_gib
                .map(|g| {
                    vec![template::ExtraDisk::Volatile {
                        size_mib: u64::from(g) * 1024,
                    }]
                })
                .unwrap_or_default(),
            nics: vec![NicSpec {
                network,
                ip: None,
                model: s.settings.get("vm_network_model").map(str::to_owned),
            }],
            context,
            graphics: true,
            requirements: s.settings.get("vm_requirements").map(str::to_owned),
            inbound_ports: Vec::new(),
            raw_extra: Vec::new(),
        };
        template::render(&spec).map_err(|e| Error::invalid(e.to_string()))?;

        let (source, driver, image_bus, inbound) = self.resolve_image(s, &req.image).await?;
        let bus = chosen_bus.or(image_bus).unwrap_or_else(|| "ide".to_owned());
        spec.root_disk = RootDisk {
            source,
            target_prefix: bus_prefix(&bus)?.to_owned(),
            driver,
            save: false,
        };
        spec.inbound_ports = inbound;
        let version =
            s.one
                .version()
                .await
                .at(s, Service::Compute, "create_node (one.system.version)")?;
        let dialect = if (version.major, version.minor) >= (3, 8) {
            template::Dialect::One38
        } else {
            template::Dialect::StratusLab
        };
        Ok(PreparedCreate { spec, dialect })
    }

    /// Reads a VM just allocated back (its IP is leased already); when that fails the VM still
    /// exists, so a record with its id, name and token is returned rather than an error.
    pub(crate) async fn read_back(
        &self,
        s: &Site,
        vm_id: i64,
        name: &str,
        token: &str,
    ) -> NodeRecord {
        match self.vm(s, vm_id, "create_node (one.vm.info)").await {
            Ok(vm) => site_node_record(s, vm, &self.instance_types),
            Err(e) => {
                log::warn!(target: "stratuslab_libcloud", "site '{}': VM {vm_id} was created but reading it back failed: {e}", s.name);
                let mut vm = VmRecord {
                    id: vm_id,
                    name: name.to_owned(),
                    state: 1,
                    ..VmRecord::default()
                };
                vm.template.client_token = Some(token.to_owned());
                site_node_record(s, vm, &self.instance_types)
            }
        }
    }

    /// Destroys a VM whose id and site are known to exist (duplicate clean-up, fleets): one
    /// `one.vm.action` in the site version's vocabulary.
    pub(crate) async fn destroy_vm(&self, s: &Site, vm_id: i64, operation: &str) -> Result<()> {
        let context = |op: &str| s.context(Service::Compute, op);
        let version =
            s.one.version().await.map_err(|e| {
                Error::remote(context(&format!("{operation} (one.system.version)")), e)
            })?;
        let name = action_name(NodeAction::Destroy, version, 0)
            .ok_or_else(|| Error::internal("no destroy action for this version"))?;
        s.one.action(name, vm_id).await.at(
            s,
            Service::Compute,
            &format!("{operation} (one.vm.action {name})"),
        )
    }

    pub(super) fn public_key(&self, s: &Site, req: &CreateNode) -> Result<String> {
        let text = if let Some(k) = &req.public_key {
            k.clone()
        } else {
            let path = req
                .public_key_file
                .clone()
                .or_else(|| s.settings.get("user_public_key_file").map(str::to_owned))
                .unwrap_or_else(|| {
                    format!(
                        "{}/.ssh/id_rsa.pub",
                        std::env::var("HOME").unwrap_or_default()
                    )
                });
            let path = expand_home(&path);
            std::fs::read_to_string(&path).map_err(|e| {
                Error::invalid(format!(
                    "no SSH public key: give auth=NodeAuthSSHKey(...) or a readable key file (cannot read {path}: {e})"
                ))
            })?
        };
        let key: String = text
            .lines()
            .filter(|l| !l.starts_with("Comment:"))
            .collect::<Vec<_>>()
            .join("\n");
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(Error::invalid("the SSH public key is empty"));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn action_names_per_version() {
        use NodeAction::*;
        assert_eq!(action_name(Destroy, v("3.2.1"), 3), Some("finalize"));
        assert_eq!(action_name(Destroy, v("3.8.5"), 3), Some("finalize"));
        assert_eq!(action_name(Destroy, v("4.14.2"), 3), Some("delete"));
        assert_eq!(action_name(Destroy, v("5.12.0"), 3), Some("terminate-hard"));
        assert_eq!(action_name(Reboot, v("3.2.1"), 3), Some("reboot"));
        assert_eq!(action_name(Reboot, v("3.8.5"), 3), Some("reboot"));
        assert_eq!(action_name(Stop, v("3.2.1"), 3), Some("stop"));
        assert_eq!(action_name(Stop, v("3.8.5"), 3), Some("poweroff"));
        assert_eq!(action_name(Start, v("3.8.5"), 8), Some("restart"));
        assert_eq!(action_name(Start, v("3.8.5"), 4), Some("resume"));
        assert_eq!(action_name(Start, v("5.12.0"), 8), Some("resume"));
        assert_eq!(action_name(Start, v("3.2.1"), 4), Some("resume"));
    }

    #[test]
    fn recover_params_per_version() {
        use crate::xmlrpc::Value;
        use RecoverOp::*;
        for op in RecoverOp::ALL {
            assert_eq!(op.param(v("3.8.5")), None);
            assert_eq!(op.param(v("4.0.1")), None);
            assert_eq!(RecoverOp::parse(op.name()).unwrap(), op);
            let action = NodeAction::parse(&format!("recover:{}", op.name())).unwrap();
            assert_eq!(action, NodeAction::Recover(op));
        }
        assert_eq!(Failure.param(v("4.2")), Some(Value::Bool(false)));
        assert_eq!(Success.param(v("4.12.3")), Some(Value::Bool(true)));
        assert_eq!(Retry.param(v("4.12.3")), None);
        assert_eq!(Retry.param(v("4.14.2")), Some(Value::Int(2)));
        assert_eq!(Delete.param(v("4.14.2")), None);
        assert_eq!(Delete.param(v("5.0.2")), Some(Value::Int(3)));
        assert_eq!(DeleteRecreate.param(v("5.6.2")), Some(Value::Int(4)));
        assert_eq!(DeleteDb.param(v("5.6.2")), None);
        assert_eq!(DeleteDb.param(v("5.8.0")), Some(Value::Int(5)));
        let codes: Vec<_> = RecoverOp::ALL
            .iter()
            .map(|op| op.param(v("7.4.0")))
            .collect();
        assert_eq!(
            codes,
            (0..6).map(|c| Some(Value::Int(c))).collect::<Vec<_>>()
        );
        assert!(NodeAction::parse("recover:resubmit").is_err());
        assert!(NodeAction::parse("recover:").is_err());
    }
}
