//! What the driver reports: node and volume records, and how a VM becomes a node (its size,
//! image, addresses and pdisk volumes).

use super::*;

/// A node as the driver reports it.
#[derive(Debug, Clone, Default)]
pub struct NodeRecord {
    pub site: String,
    pub vm: VmRecord,
    pub state: &'static str,
    pub public_ips: Vec<String>,
    pub private_ips: Vec<String>,
    /// (name, cpu, ram MiB, swap MiB)
    pub size: Option<(String, u32, u64, u64)>,
    pub image_id: Option<String>,
    /// Attached pdisk volumes: uuid → device; `None` when unknown (pdisk could not be read, or
    /// was not asked).
    pub volumes: Option<BTreeMap<String, String>>,
}

/// The caller's pdisk mounts of a site by VM id (uuid → device), as [`Driver::site_mounts`]
/// reads them.
pub type MountsByVm = BTreeMap<i64, BTreeMap<String, String>>;

/// Sets a node's `volumes` from the site's mounts: the mounts on its VM when pdisk knows any
/// (else those its template names), unknown when pdisk could not be read. One rule for
/// `list_nodes` and `ex_get_node`.
pub(super) fn apply_mounts(record: &mut NodeRecord, mounts: Option<&MountsByVm>) {
    match mounts {
        Some(by_vm) => {
            if let Some(volumes) = by_vm.get(&record.vm.id) {
                record.volumes = Some(volumes.clone());
            }
        }
        None => record.volumes = None,
    }
}

/// A volume as the driver reports it.
#[derive(Debug, Clone)]
pub struct VolumeRecord {
    pub site: String,
    pub disk: pdisk::DiskSummary,
    /// Where the disk is mounted (read for disks whose `count` is not 0).
    pub mounts: Vec<pdisk::Mount>,
}

/// The instance type a VM was made from: `(name, cpu, ram MiB, swap MiB)`. CPU is `VCPU`, else
/// `CPU` rounded up; swap is the `TYPE = swap` disk (0 without one). The name is the instance type
/// with exactly these three values, else `custom-<cpu>cpu-<ram>mib-<swap>swap`. `None` when the
/// template has no CPU or MEMORY.
pub fn size_of(vm: &VmRecord, types: &[InstanceType]) -> Option<(String, u32, u64, u64)> {
    let cpu = match (vm.template.vcpu, vm.template.cpu) {
        (Some(v), _) => v,
        (None, Some(c)) if c.is_finite() && c > 0.0 && c <= f64::from(u32::MAX) => c.ceil() as u32,
        _ => return None,
    };
    let ram = vm.template.memory_mib?;
    let swap = vm
        .template
        .disks
        .iter()
        .find(|d| {
            d.disk_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("swap"))
        })
        .and_then(|d| d.size_mib)
        .unwrap_or(0);
    let name = types
        .iter()
        .find(|t| t.cpu == cpu && t.ram_mib == ram && t.swap_mib == swap)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| format!("custom-{cpu}cpu-{ram}mib-{swap}swap"));
    Some((name, cpu, ram, swap))
}

/// Whether an OpenNebula network name is a private one: StratusLab's `private` and `local`
/// networks, and any name containing `priv` (the 3.8.5 captures' `stratus-priv`).
pub(super) fn is_private_network(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "local" || name.contains("priv")
}

/// [`node_record`] at site `s`: on a plain OpenNebula site the image is the id of the
/// `NodeImage` it was booted from (`image-<n>@<site>` of the root disk, else
/// `template-<n>@<site>`).
pub fn site_node_record(s: &Site, vm: VmRecord, types: &[InstanceType]) -> NodeRecord {
    let mut record = node_record(&s.name, vm, types);
    if s.kind == SiteKind::OpenNebula {
        record.image_id = opennebula::node_image_id(&s.name, &record.vm);
    }
    record
}

/// A VM as the driver reports it. IPs: every NIC's `IP`, private for private networks (see
/// [`is_private_network`]), public otherwise. Image: the root disk's (`DISK_ID` 0, else the first
/// disk) image-repository `IMAGE` name when it has one, else the image id in its `SOURCE`
/// ([`image_id_of_source`]). Volumes: the other `pdisk:` disks, uuid → target.
pub fn node_record(site: &str, vm: VmRecord, types: &[InstanceType]) -> NodeRecord {
    let mut public_ips = Vec::new();
    let mut private_ips = Vec::new();
    for nic in &vm.template.nics {
        let Some(ip) = nic.ip.clone() else { continue };
        if is_private_network(nic.network.as_deref().unwrap_or("")) {
            private_ips.push(ip);
        } else {
            public_ips.push(ip);
        }
    }
    let root = vm
        .template
        .disks
        .iter()
        .find(|d| d.disk_id == Some(0))
        .or_else(|| vm.template.disks.first());
    let image_id = root.and_then(|d| {
        d.image
            .clone()
            .or_else(|| d.source.as_deref().map(image_id_of_source))
    });
    let mut volumes = BTreeMap::new();
    for d in &vm.template.disks {
        if let (Some(src), Some(target)) = (d.source.as_deref(), d.target.as_deref()) {
            if src.starts_with("pdisk:") && Some(d) != root {
                volumes.insert(image_id_of_source(src), target.to_owned());
            }
        }
    }
    NodeRecord {
        site: site.to_owned(),
        state: states::node_state(vm.state, vm.lcm_state),
        size: size_of(&vm, types),
        public_ips,
        private_ips,
        image_id,
        volumes: Some(volumes),
        vm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a fixture VM must become.
    struct Want {
        id: i64,
        name: &'static str,
        state: &'static str,
        public: &'static [&'static str],
        private: &'static [&'static str],
        size: Option<(&'static str, u32, u64, u64)>,
        image: Option<&'static str>,
        host: Option<&'static str>,
        volumes: &'static [(&'static str, &'static str)],
        created: i64,
    }

    const PROBE_1: Want = Want {
        id: 0,
        name: "probe-vm-1",
        state: "running",
        public: &[],
        private: &["192.168.100.1"],
        size: Some(("custom-1cpu-256mib-128swap", 1, 256, 128)),
        image: Some("ttylinux"),
        host: Some("dummyhost"),
        volumes: &[],
        created: 1795655396,
    };

    const PROBE_5: Want = Want {
        id: 4,
        name: "probe-vm-5",
        state: "running",
        public: &[],
        private: &["192.168.100.50"],
        size: Some(("custom-1cpu-512mib-0swap", 1, 512, 0)),
        image: Some("AbCdEf"),
        host: Some("dummyhost"),
        volumes: &[],
        created: 1795655425,
    };

    const fn probe(id: i64, name: &'static str, state: &'static str, created: i64) -> Want {
        Want {
            id,
            name,
            state,
            created,
            ..PROBE_1
        }
    }

    const PROBE_1_DONE: Want = probe(0, "probe-vm-1", "terminated", 1795655396);

    const PROBE_2_DONE: Want = probe(1, "probe-vm-2", "terminated", 1795655406);

    const PROBE_3_DONE: Want = probe(2, "probe-vm-3", "terminated", 1795655415);

    const PROBE_1_PENDING: Want = Want {
        state: "pending",
        host: None,
        ..PROBE_1
    };

    /// Every 3.8.5 `vm-info*` / `vmpool-info*` capture and the StratusLab 3.2 sample, decoded.
    fn golden() -> Vec<(&'static str, Vec<Want>)> {
        vec![
            ("opennebula-3.8.5/vm-info.xml", vec![PROBE_1]),
            (
                "opennebula-3.8.5/vm-info-pending.xml",
                vec![PROBE_1_PENDING],
            ),
            (
                "opennebula-3.8.5/vm-info-poweroff.xml",
                vec![Want {
                    state: "stopped",
                    ..PROBE_1
                }],
            ),
            ("opennebula-3.8.5/vm-info-done.xml", vec![PROBE_1_DONE]),
            ("opennebula-3.8.5/vm-info-monitored.xml", vec![PROBE_5]),
            ("opennebula-3.8.5/vm-info-source-disk.xml", vec![PROBE_5]),
            ("opennebula-3.8.5/vmpool-info.xml", vec![PROBE_1]),
            ("opennebula-3.8.5/vmpool-info-mine.xml", vec![PROBE_1]),
            (
                "opennebula-3.8.5/vmpool-info-pending.xml",
                vec![PROBE_1_PENDING],
            ),
            (
                "opennebula-3.8.5/vmpool-info-done.xml",
                vec![PROBE_1_DONE, PROBE_2_DONE, PROBE_3_DONE],
            ),
            (
                "opennebula-3.8.5/vmpool-info-all.xml",
                vec![
                    PROBE_1_DONE,
                    PROBE_2_DONE,
                    PROBE_3_DONE,
                    probe(3, "probe-vm-4", "running", 1795655420),
                    PROBE_5,
                    Want {
                        id: 5,
                        name: "y",
                        state: "pending",
                        public: &[],
                        private: &[],
                        size: Some(("custom-1cpu-64mib-0swap", 1, 64, 0)),
                        image: None,
                        host: None,
                        volumes: &[],
                        created: 1795655430,
                    },
                ],
            ),
            (
                "stratuslab/compute/vm-with-extra-disk-in-pdisk.xml",
                vec![Want {
                    id: 10755,
                    name: "withlun.1:a9bc274f-42c0-4e76-ae16-0cc2fbe92a46",
                    state: "running",
                    public: &["192.187.24.93"],
                    private: &[],
                    size: Some(("custom-2cpu-16384mib-1536swap", 2, 16384, 1536)),
                    image: Some("Pd1C0IktTPRXFPGlEHfxrF7gxOF"),
                    host: Some("192.168.112.64"),
                    volumes: &[("95b75092-17d2-459f-9fa0-cd1deaa721f1", "vdc")],
                    created: 1419246046,
                }],
            ),
        ]
    }

    fn fixture(path: &str) -> Vec<u8> {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    #[test]
    fn golden_nodes_from_every_real_capture() {
        let types = crate::config::default_instance_types();
        let cases = golden();
        for (path, wants) in &cases {
            let xml = fixture(path);
            let vms = if path.contains("vmpool-info") {
                parse_pool(&xml).unwrap()
            } else {
                vec![parse_vm(&xml).unwrap()]
            };
            assert_eq!(vms.len(), wants.len(), "{path}: number of VMs");
            for (vm, want) in vms.into_iter().zip(wants) {
                let r = node_record("lal", vm, &types);
                let at = format!("{path} VM {}", want.id);
                assert_eq!(r.site, "lal", "{at}");
                assert_eq!(r.vm.id, want.id, "{at}");
                assert_eq!(r.vm.name, want.name, "{at}");
                assert_eq!(r.state, want.state, "{at}");
                assert_eq!(r.public_ips, want.public, "{at}: public ips");
                assert_eq!(r.private_ips, want.private, "{at}: private ips");
                assert_eq!(
                    r.size,
                    want.size.map(|(n, c, m, s)| (n.to_owned(), c, m, s)),
                    "{at}: size"
                );
                assert_eq!(r.image_id.as_deref(), want.image, "{at}: image");
                assert_eq!(r.vm.current_host(), want.host, "{at}: host");
                let volumes: Vec<(&str, &str)> = r
                    .volumes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(volumes, want.volumes, "{at}: volumes");
                assert_eq!(r.vm.stime, want.created, "{at}: created");
            }
        }
        // Every capture of these kinds is covered (a new one must be added to the table).
        let dir = format!(
            "{}/tests/fixtures/opennebula-3.8.5",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                (n.starts_with("vm-info") || n.starts_with("vmpool-info")) && n.ends_with(".xml")
            })
            .map(|n| format!("opennebula-3.8.5/{n}"))
            .collect();
        on_disk.sort();
        let mut covered: Vec<String> = cases
            .iter()
            .map(|(p, _)| p.to_string())
            .filter(|p| p.starts_with("opennebula-3.8.5/"))
            .collect();
        covered.sort();
        assert_eq!(covered, on_disk);
    }

    #[test]
    fn sizes_match_configured_instance_types_exactly() {
        let xml = fixture("opennebula-3.8.5/vm-info.xml");
        let mut types = crate::config::default_instance_types();
        let r = node_record("lal", parse_vm(&xml).unwrap(), &types);
        assert_eq!(r.size.unwrap().0, "custom-1cpu-256mib-128swap");
        // Same CPU and RAM but another swap is not that type.
        types.push(InstanceType {
            name: "probe.other-swap".into(),
            cpu: 1,
            ram_mib: 256,
            swap_mib: 512,
        });
        let r = node_record("lal", parse_vm(&xml).unwrap(), &types);
        assert_eq!(r.size.unwrap().0, "custom-1cpu-256mib-128swap");
        types.push(InstanceType {
            name: "probe.tiny".into(),
            cpu: 1,
            ram_mib: 256,
            swap_mib: 128,
        });
        let r = node_record("lal", parse_vm(&xml).unwrap(), &types);
        assert_eq!(r.size, Some(("probe.tiny".to_owned(), 1, 256, 128)));
        // A template without MEMORY has no size; a CPU of 0.5 without VCPU counts as 1.
        let mut vm = parse_vm(&xml).unwrap();
        vm.template.vcpu = None;
        assert_eq!(size_of(&vm, &types).unwrap().1, 1);
        vm.template.cpu = Some(f64::NAN);
        assert_eq!(size_of(&vm, &types), None);
        vm.template.cpu = Some(2.5);
        vm.template.memory_mib = None;
        assert_eq!(size_of(&vm, &types), None);
    }

    #[test]
    fn network_names_decide_public_or_private() {
        for (name, private) in [
            ("public", false),
            ("PUBLIC", false),
            ("private", true),
            ("local", true),
            ("stratus-priv", true),
            ("Private-LAN", true),
            ("", false),
            ("localnet", false),
        ] {
            assert_eq!(is_private_network(name), private, "{name}");
        }
    }
}
