use super::cut::{PIECE_MIN_BYTES, STREAM_PIECE_BYTES};
use super::*;
use crate::error::{Classify, Kind};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIX}/{path}")).unwrap()
}

fn one(path: &str) -> VmRecord {
    parse_vm(&read(&format!("opennebula-3.8.5/{path}"))).unwrap()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn ctx(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 test@example.org";

/// probe-vm-1's template (the same in every capture of VM 0).
fn probe_vm_1_template() -> VmTemplate {
    VmTemplate {
        cpu: Some(0.5),
        vcpu: Some(1),
        memory_mib: Some(256),
        name: s("probe-vm-1"),
        disks: vec![
            Disk {
                disk_id: Some(0),
                source: s("dummy_path"),
                image: s("ttylinux"),
                image_id: Some(0),
                target: s("hda"),
                disk_type: s("FILE"),
                size_mib: None,
                driver: None,
                format: None,
                readonly: Some(false),
            },
            Disk {
                disk_id: Some(1),
                target: s("hdb"),
                disk_type: s("swap"),
                size_mib: Some(128),
                ..Disk::default()
            },
        ],
        nics: vec![Nic {
            network: s("stratus-priv"),
            ip: s("192.168.100.1"),
            mac: s("02:00:c0:a8:64:01"),
            network_id: Some(0),
            ip6: None,
        }],
        context: ctx(&[
            ("DISK_ID", "2"),
            ("HOSTNAME", "probe-vm-1"),
            ("IP_PUBLIC", "192.168.100.1"),
            ("SSH_PUBLIC_KEY", KEY),
            ("TARGET", "hdc"),
        ]),
        error_message: None,
        inbound_ports: None,
        client_token: None,
        template_id: None,
    }
}

fn hist(seq: i64, stime: i64, etime: i64) -> History {
    History {
        seq,
        hostname: "dummyhost".into(),
        stime,
        etime,
    }
}

fn probe_vm_1(state: i32, lcm: i32, etime: i64, history: Vec<History>) -> VmRecord {
    VmRecord {
        id: 0,
        uid: 0,
        gid: 0,
        uname: "oneadmin".into(),
        gname: "oneadmin".into(),
        name: "probe-vm-1".into(),
        state,
        lcm_state: lcm,
        stime: 1795655396,
        etime,
        deploy_id: if history.is_empty() {
            String::new()
        } else {
            "dummyhost:probe-vm-1:dummy".into()
        },
        template: probe_vm_1_template(),
        history,
    }
}

#[test]
fn vm_info_running() {
    let vm = one("vm-info.xml");
    assert_eq!(vm, probe_vm_1(3, 3, 0, vec![hist(0, 1795655397, 0)]));
    assert_eq!(vm.current_host(), Some("dummyhost"));
}

#[test]
fn vm_info_pending_has_no_host() {
    let vm = one("vm-info-pending.xml");
    assert_eq!(vm, probe_vm_1(1, 0, 0, vec![]));
    assert_eq!(vm.current_host(), None);
}

#[test]
fn vm_info_poweroff() {
    let vm = one("vm-info-poweroff.xml");
    let h = vec![
        hist(0, 1795655397, 1795655403),
        hist(1, 1795655403, 1795655403),
    ];
    assert_eq!(vm, probe_vm_1(8, 0, 0, h));
}

#[test]
fn vm_info_done_has_four_history_records() {
    let vm = one("vm-info-done.xml");
    let h = vec![
        hist(0, 1795655397, 1795655403),
        hist(1, 1795655403, 1795655403),
        hist(2, 1795655403, 1795655404),
        hist(3, 1795655406, 1795655406),
    ];
    assert_eq!(vm, probe_vm_1(6, 0, 1795655406, h));
    assert_eq!(vm.current_host(), Some("dummyhost"));
}

fn probe_vm_5() -> VmRecord {
    VmRecord {
        id: 4,
        uid: 0,
        gid: 0,
        uname: "oneadmin".into(),
        gname: "oneadmin".into(),
        name: "probe-vm-5".into(),
        state: 3,
        lcm_state: 3,
        stime: 1795655425,
        etime: 0,
        deploy_id: "dummyhost:probe-vm-5:dummy".into(),
        template: VmTemplate {
            cpu: Some(1.0),
            vcpu: None,
            memory_mib: Some(512),
            name: s("probe-vm-5"),
            disks: vec![Disk {
                disk_id: Some(0),
                source: s("https://marketplace.example.org/metadata/AbCdEf"),
                image: None,
                image_id: None,
                target: s("hda"),
                disk_type: s("fs"),
                size_mib: Some(1024),
                driver: None,
                format: s("ext3"),
                readonly: None,
            }],
            nics: vec![Nic {
                network: s("stratus-priv"),
                ip: s("192.168.100.50"),
                mac: s("02:00:c0:a8:64:32"),
                network_id: Some(0),
                ip6: None,
            }],
            context: ctx(&[("DISK_ID", "1"), ("SSH_PUBLIC_KEY", KEY), ("TARGET", "hdd")]),
            error_message: None,
            inbound_ports: None,
            client_token: None,
            template_id: None,
        },
        history: vec![History {
            seq: 0,
            hostname: "dummyhost".into(),
            stime: 1795655430,
            etime: 0,
        }],
    }
}

#[test]
fn vm_info_source_disk_and_monitored() {
    assert_eq!(one("vm-info-source-disk.xml"), probe_vm_5());
    // Monitoring values (top-level MEMORY/CPU/NET_*) are not part of the record.
    assert_eq!(one("vm-info-monitored.xml"), probe_vm_5());
}

fn pool(path: &str) -> Vec<VmRecord> {
    parse_pool(&read(&format!("opennebula-3.8.5/{path}"))).unwrap()
}

/// A VM as a pool listing gives it: without CONTEXT.
fn listed(mut vm: VmRecord) -> VmRecord {
    vm.template.context.clear();
    vm
}

#[test]
fn pool_listings_leave_context_out() {
    let doc = read("opennebula-3.8.5/vmpool-info.xml");
    let vms = parse_pool(&doc).unwrap();
    assert!(vms.iter().all(|vm| vm.template.context.is_empty()));
    assert!(!one("vm-info.xml").template.context.is_empty());
}

#[test]
fn vmpool_info_single_vm() {
    let running = vec![listed(probe_vm_1(3, 3, 0, vec![hist(0, 1795655397, 0)]))];
    assert_eq!(pool("vmpool-info.xml"), running);
    assert_eq!(pool("vmpool-info-mine.xml"), running);
    assert_eq!(
        pool("vmpool-info-pending.xml"),
        vec![listed(probe_vm_1(1, 0, 0, vec![]))]
    );
}

/// (id, name, state, lcm, ip, seqs of the history records, cpu, memory, disks)
type Summary = (
    i64,
    String,
    i32,
    i32,
    Option<String>,
    Vec<i64>,
    Option<f64>,
    Option<u64>,
    usize,
);

fn summary(vms: &[VmRecord]) -> Vec<Summary> {
    vms.iter()
        .map(|v| {
            (
                v.id,
                v.name.clone(),
                v.state,
                v.lcm_state,
                v.template.nics.first().and_then(|n| n.ip.clone()),
                v.history.iter().map(|h| h.seq).collect(),
                v.template.cpu,
                v.template.memory_mib,
                v.template.disks.len(),
            )
        })
        .collect()
}

#[test]
fn vmpool_info_all_and_done() {
    let all = pool("vmpool-info-all.xml");
    let ip1 = s("192.168.100.1");
    let expected_all: Vec<Summary> = vec![
        (
            0,
            "probe-vm-1".into(),
            6,
            0,
            ip1.clone(),
            vec![3],
            Some(0.5),
            Some(256),
            2,
        ),
        (
            1,
            "probe-vm-2".into(),
            6,
            0,
            ip1.clone(),
            vec![0],
            Some(0.5),
            Some(256),
            2,
        ),
        (
            2,
            "probe-vm-3".into(),
            6,
            0,
            ip1.clone(),
            vec![0],
            Some(0.5),
            Some(256),
            2,
        ),
        (
            3,
            "probe-vm-4".into(),
            3,
            3,
            ip1,
            vec![1],
            Some(0.5),
            Some(256),
            2,
        ),
        (
            4,
            "probe-vm-5".into(),
            3,
            3,
            s("192.168.100.50"),
            vec![0],
            Some(1.0),
            Some(512),
            1,
        ),
        (5, "y".into(), 1, 0, None, vec![], Some(1.0), Some(64), 0),
    ];
    assert_eq!(summary(&all), expected_all);
    // pool listings carry only the current HISTORY: VM 0's is SEQ 3
    assert_eq!(all[0].history, vec![hist(3, 1795655406, 1795655406)]);
    assert_eq!(all[4], listed(probe_vm_5()));
    let done = pool("vmpool-info-done.xml");
    assert_eq!(summary(&done), expected_all[..3].to_vec());
    assert!(all
        .iter()
        .all(|v| v.current_host() == v.history.first().map(|_| "dummyhost")));
}

#[test]
fn stratuslab_sample_pretty_printed() {
    let vm = parse_vm(&read("stratuslab/compute/vm-with-extra-disk-in-pdisk.xml")).unwrap();
    assert_eq!(vm.id, 10755);
    assert_eq!((vm.uid, vm.gid), (10, 1));
    assert_eq!(vm.uname, "adricmic");
    assert_eq!(vm.gname, "users");
    assert_eq!(vm.name, "withlun.1:a9bc274f-42c0-4e76-ae16-0cc2fbe92a46");
    assert_eq!((vm.state, vm.lcm_state), (3, 3));
    assert_eq!((vm.stime, vm.etime), (1419246046, 0));
    assert_eq!(vm.deploy_id, "one-10755");
    let t = &vm.template;
    assert_eq!(
        (t.cpu, t.vcpu, t.memory_mib),
        (Some(2.0), Some(2), Some(16384))
    );
    assert_eq!(t.name.as_deref(), Some(vm.name.as_str()));
    assert_eq!(
        t.disks,
        vec![
            Disk {
                disk_id: Some(0),
                source: s("https://marketplace.stratuslab.eu/metadata/Pd1C0IktTPRXFPGlEHfxrF7gxOF"),
                target: s("vda"),
                driver: s("raw"),
                readonly: Some(false),
                ..Disk::default()
            },
            Disk {
                disk_id: Some(1),
                target: s("vdb"),
                disk_type: s("swap"),
                size_mib: Some(1536),
                readonly: Some(false),
                ..Disk::default()
            },
            Disk {
                disk_id: Some(2),
                source: s("pdisk:154.48.152.10:8445/95b75092-17d2-459f-9fa0-cd1deaa721f1"),
                target: s("vdc"),
                disk_type: s("block"),
                ..Disk::default()
            },
        ]
    );
    assert_eq!(
        t.nics,
        vec![Nic {
            network: s("public"),
            ip: s("192.187.24.93"),
            mac: s("00:16:c1:93:6c:5d"),
            network_id: Some(25),
            ip6: None,
        }]
    );
    assert_eq!(t.context.len(), 16);
    assert_eq!(t.context[0], ("PUBLIC_KEY".into(), "ssh-rsa abc".into()));
    assert_eq!(
        t.context[6],
        ("SLIPSTREAM_COOKIE".into(), "empty; Path:/".into())
    );
    assert_eq!(t.context[15], ("TARGET".into(), "hdd".into()));
    assert_eq!(
        vm.history,
        vec![History {
            seq: 0,
            hostname: "192.168.112.64".into(),
            stime: 1419246062,
            etime: 0
        }]
    );
    assert_eq!(vm.current_host(), Some("192.168.112.64"));
}

#[test]
fn current_host_is_highest_seq_whatever_the_order() {
    let vm = VmRecord {
        history: vec![
            History {
                seq: 2,
                hostname: "c".into(),
                ..History::default()
            },
            History {
                seq: 0,
                hostname: "a".into(),
                ..History::default()
            },
        ],
        ..VmRecord::default()
    };
    assert_eq!(vm.current_host(), Some("c"));
}

#[test]
fn entities_cdata_and_ipv6() {
    let xml = b"<VM><ID>7</ID><STATE>3</STATE><LCM_STATE>3</LCM_STATE>\
            <NAME>a &amp; b &#x41;</NAME><TEMPLATE><CONTEXT><K>\n  <![CDATA[ keep ]]>\n</K>\
            <E/><S><![CDATA[x]]]]><![CDATA[>y]]></S></CONTEXT>\
            <NIC><IP6_LINK>fe80::1</IP6_LINK><IP6_SITE>fec0::1</IP6_SITE><IP6_GLOBAL>2001:db8::1</IP6_GLOBAL></NIC>\
            <NIC><IP6_SITE>fec0::2</IP6_SITE></NIC><NIC/>\
            <ERROR><MESSAGE>boom</MESSAGE><TIMESTAMP>x</TIMESTAMP></ERROR>\
            <INBOUND_PORTS><![CDATA[22,80]]></INBOUND_PORTS><UNKNOWN><DEEP>1</DEEP></UNKNOWN></TEMPLATE></VM>";
    let vm = parse_vm(xml).unwrap();
    assert_eq!(vm.name, "a & b A");
    assert_eq!(
        vm.template.context,
        ctx(&[("K", " keep "), ("E", ""), ("S", "x]]>y")])
    );
    let ip6: Vec<_> = vm.template.nics.iter().map(|n| n.ip6.clone()).collect();
    assert_eq!(ip6, vec![s("2001:db8::1"), s("fec0::2"), None]);
    assert_eq!(vm.template.error_message, s("boom"));
    assert_eq!(vm.template.inbound_ports, s("22,80"));
}

#[test]
fn client_token_from_template_or_user_template() {
    // Synthetic documents in the two shapes oned stores a custom top-level attribute in:
    // TEMPLATE (3.x) and USER_TEMPLATE (4.0 on; see src/fleet.rs for the source check).
    let v3 = b"<VM><ID>1</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE><TEMPLATE>\
            <CLIENT_TOKEN><![CDATA[tok-3]]></CLIENT_TOKEN></TEMPLATE></VM>";
    assert_eq!(parse_vm(v3).unwrap().template.client_token, s("tok-3"));
    let v7 = b"<VM_POOL><VM><ID>2</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE><TEMPLATE/>\
            <USER_TEMPLATE><LABELS>x</LABELS><CLIENT_TOKEN><![CDATA[tok-7]]></CLIENT_TOKEN>\
            </USER_TEMPLATE></VM><VM><ID>3</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE>\
            <USER_TEMPLATE/></VM></VM_POOL>";
    let pool = parse_pool(v7).unwrap();
    assert_eq!(pool[0].template.client_token, s("tok-7"));
    assert_eq!(pool[1].template.client_token, None);
}

#[test]
fn errors_are_specific() {
    let e = parse_vm(b"<VM_POOL></VM_POOL>").unwrap_err();
    assert_eq!(e.to_string(), "expected root element <VM>, found <VM_POOL>");
    let e = parse_pool(b"<VM><ID>1</ID></VM>").unwrap_err();
    assert!(matches!(
        e,
        VmXmlError::Root {
            expected: "VM_POOL",
            ..
        }
    ));
    let e = parse_vm(b"<VM><ID>x1</ID></VM>").unwrap_err();
    assert_eq!(e.to_string(), "<ID> is not a number: \"x1\"");
    let e = parse_vm(b"<VM><ID>1</ID><STATE>1</STATE></VM>").unwrap_err();
    assert_eq!(e.to_string(), "VM document without <LCM_STATE>");
    assert!(matches!(
        parse_vm(b"<VM><ID>1</ID>").unwrap_err(),
        VmXmlError::Truncated
    ));
    assert!(matches!(parse_vm(b"").unwrap_err(), VmXmlError::Truncated));
    assert!(matches!(
        parse_vm(b"<VM></WM>").unwrap_err(),
        VmXmlError::Xml { .. }
    ));
    assert!(matches!(
        parse_vm(b"<VM>&bogus;</VM>").unwrap_err(),
        VmXmlError::Xml { .. }
    ));
    assert!(matches!(
        parse_vm(b"<VM><ID>1</ID><STATE>1</STATE><LCM_STATE>0</LCM_STATE></VM><VM/>").unwrap_err(),
        VmXmlError::Root { .. }
    ));
    assert!(matches!(
        parse_vm(b"<VM><NAME>\xff</NAME></VM>").unwrap_err(),
        VmXmlError::Xml { .. }
    ));
    assert_eq!(e.kind(), Kind::Malformed);
    assert_eq!(parse_pool(b"<VM_POOL/>").unwrap(), vec![]);
    assert_eq!(
        parse_pool(b"<?xml version=\"1.0\"?>\n<VM_POOL>\n</VM_POOL>\n").unwrap(),
        vec![]
    );
}

/// `doc` as an XML-RPC server writes it inside `<string>`: `<`, `>` and `&` escaped.
fn escape(doc: &[u8]) -> String {
    let mut out = String::new();
    crate::xmlrpc::escape_into(std::str::from_utf8(doc).unwrap(), &mut out);
    out
}

/// `parse_pool` of the unescaped text (an unescaping error at byte 0): what
/// `parse_pool_escaped` must always give.
fn serial(raw: &str) -> Result<Vec<VmRecord>, String> {
    let doc =
        crate::xmlrpc::unescape(raw).map_err(|e| format!("malformed VM XML at byte 0: {e}"))?;
    parse_pool(doc.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn escaped_pools_read_as_the_captures() {
    for name in [
        "vmpool-info.xml",
        "vmpool-info-all.xml",
        "vmpool-info-done.xml",
        "vmpool-info-mine.xml",
        "vmpool-info-pending.xml",
    ] {
        let xml = read(&format!("opennebula-3.8.5/{name}"));
        let expected = parse_pool(&xml).unwrap();
        assert!(!expected.is_empty(), "{name}");
        let raw = escape(&xml);
        assert!(
            raw.starts_with("&lt;VM_POOL&gt;&lt;VM&gt;&lt;ID&gt;"),
            "{name}"
        );
        assert_eq!(parse_pool_escaped(&raw).unwrap(), expected, "{name}");
        // Only `<` and `&` escaped (`>` may stay raw in XML text).
        let raw = raw.replace("&gt;", ">");
        assert_eq!(parse_pool_escaped(&raw).unwrap(), expected, "{name}, raw >");
    }
}

#[test]
fn escaped_forms_the_fast_reader_refuses_read_the_same() {
    let xml = read("opennebula-3.8.5/vmpool-info-all.xml");
    let expected = parse_pool(&xml).unwrap();
    let raw = escape(&xml);
    for (what, changed) in [
        (
            "character reference",
            raw.replacen("&lt;NAME&gt;", "&#60;NAME&gt;", 1),
        ),
        (
            "hex character reference",
            raw.replacen("&lt;/NAME&gt;", "&lt;/NAME&#x3E;", 1),
        ),
        ("CR LF", raw.replacen("&lt;/VM&gt;", "&lt;/VM&gt;\r\n", 1)),
        (
            "comment",
            raw.replacen("&lt;VM&gt;", "&lt;!-- x --&gt;&lt;VM&gt;", 1),
        ),
        ("declaration", format!("&lt;?xml version=\"1.0\"?&gt;{raw}")),
        (
            "attribute",
            raw.replacen("&lt;VM&gt;", "&lt;VM a=&quot;1&quot;&gt;", 1),
        ),
        (
            "quot entity",
            raw.replacen("&lt;VM&gt;", "&lt;VM a=\"&amp;quot;\"&gt;", 1),
        ),
    ] {
        assert_eq!(parse_pool_escaped(&changed).unwrap(), expected, "{what}");
    }
    // Escaped entities inside the document's text and CDATA are the document's own.
    let raw = escape(
        b"<VM_POOL><VM><ID>7</ID><STATE>3</STATE><LCM_STATE>3</LCM_STATE>\
            <NAME>a &amp; b &#x41; &lt;c&gt;</NAME><DEPLOY_ID><![CDATA[x<y&z]]></DEPLOY_ID>\
            <TEMPLATE><CONTEXT><K><![CDATA[x<y&z]]></K></CONTEXT></TEMPLATE></VM></VM_POOL>",
    );
    let vms = parse_pool_escaped(&raw).unwrap();
    assert_eq!(vms[0].name, "a & b A <c>");
    assert_eq!(vms[0].deploy_id, "x<y&z");
    // A listing's records leave CONTEXT out.
    assert!(vms[0].template.context.is_empty());
    assert_eq!(Ok(vms), serial(&raw));
}

#[test]
fn escaped_errors_are_the_serial_ones() {
    for raw in [
        "&lt;VM_POOL&gt;&lt;VM&gt;&lt;ID&gt;x&lt;/ID&gt;&lt;/VM&gt;&lt;/VM_POOL&gt;",
        "&lt;VM_POOL&gt;&lt;VM&gt;&lt;/WM&gt;&lt;/VM_POOL&gt;",
        "&lt;VM_POOL&gt;&lt;VM&gt;&amp;bogus;&lt;/VM&gt;&lt;/VM_POOL&gt;",
        "&lt;VM_POOL&gt;&lt;VM&gt;&lt;ID&gt;1",
        "&lt;VM&gt;&lt;/VM&gt;",
        "&lt;VM_POOL",
        "&bogus;",
        "&lt",
        "",
    ] {
        let got = parse_pool_escaped(raw).map_err(|e| e.to_string());
        assert!(got.is_err(), "{raw}");
        assert_eq!(got, serial(raw), "{raw}");
    }
    assert_eq!(parse_pool_escaped("&lt;VM_POOL/&gt;").unwrap(), vec![]);
}

/// A pool big enough to be read in pieces, its VM names chosen by `name(i)`.
fn big_pool(vms: usize, name: impl Fn(usize) -> String) -> Vec<u8> {
    let one = String::from_utf8(read("opennebula-3.8.5/vm-info.xml")).unwrap();
    let mut doc = String::from("<VM_POOL>");
    for i in 0..vms {
        let vm = one
            .replacen("<ID>0</ID>", &format!("<ID>{i}</ID>"), 1)
            .replacen(
                "<NAME>probe-vm-1</NAME>",
                &format!("<NAME><![CDATA[{}]]></NAME>", name(i)),
                1,
            );
        doc.push_str(&vm);
    }
    doc.push_str("</VM_POOL>");
    doc.into_bytes()
}

#[test]
fn big_pools_read_in_pieces_as_in_one() {
    let plain = big_pool(2000, |i| format!("vm-{i}"));
    assert!(plain.len() > 4 * PIECE_MIN_BYTES);
    let mut whole = Vec::new();
    parse(utf8(&plain).unwrap(), Root::Pool, Part::Whole, &mut whole).unwrap();
    assert_eq!(whole.len(), 2000);
    assert_eq!(whole[1999].id, 1999);
    assert_eq!(whole[1999].name, "vm-1999");
    assert_eq!(parse_pool(&plain).unwrap(), whole);
    assert_eq!(parse_pool_escaped(&escape(&plain)).unwrap(), whole);
    // A name that looks like the cut marker, everywhere: cuts fall inside CDATA, the pieces
    // do not read, and the whole document is read in one piece.
    let tricky = big_pool(2000, |i| format!("x</VM><VM>{i}"));
    let vms = parse_pool(&tricky).unwrap();
    assert_eq!(vms.len(), 2000);
    assert_eq!(vms[1000].name, "x</VM><VM>1000");
    assert_eq!(parse_pool_escaped(&escape(&tricky)).unwrap(), vms);
    // A broken document gives the serial error whatever the pieces.
    let mut broken = plain.clone();
    let at = broken.len() * 3 / 4;
    broken.splice(at..at, b"<".iter().copied());
    let serial_error = parse(
        utf8(&broken).unwrap(),
        Root::Pool,
        Part::Whole,
        &mut Vec::new(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(parse_pool(&broken).unwrap_err().to_string(), serial_error);
}

use crate::pieces::Work;

/// The pieces a `PoolPieces` of the escaped document `raw` hands over (the ids of their
/// VMs), and whether it read the document. `helpers` more threads take pieces too.
fn streamed_with(raw: &str, helpers: usize) -> (bool, Vec<Vec<i64>>) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&got);
    let pieces = pool_pieces(
        bytes::Bytes::from(raw.to_owned()),
        0..raw.len(),
        Box::new(move |vms: Vec<VmRecord>| {
            sink.lock()
                .unwrap()
                .push(vms.iter().map(|vm| vm.id).collect())
        }),
    );
    let ok = std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|| while pieces.read_one() {});
        }
        pieces.finish()
    });
    assert!(!pieces.read_one());
    let got = got.lock().unwrap().clone();
    (ok, got)
}

fn streamed(raw: &str) -> (bool, Vec<Vec<i64>>) {
    streamed_with(raw, 0)
}

#[test]
fn big_pools_stream_in_order_as_read_in_one() {
    let plain = big_pool(3000, |i| format!("vm-{i}"));
    let raw = escape(&plain);
    assert!(raw.len() > 4 * STREAM_PIECE_BYTES);
    let (ok, pieces) = streamed(&raw);
    assert!(ok);
    assert!(pieces.len() >= 4, "{} pieces", pieces.len());
    assert!(pieces.iter().all(|p| !p.is_empty()));
    let ids: Vec<i64> = pieces.concat();
    assert_eq!(ids, (0..3000).collect::<Vec<i64>>());
    // Several readers: the same pieces, in the same order.
    assert_eq!(streamed_with(&raw, 3), (true, pieces));
    // The records themselves are parse_pool's.
    let records = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&records);
    let all = pool_pieces(
        bytes::Bytes::from(raw.clone()),
        0..raw.len(),
        Box::new(move |vms| sink.lock().unwrap().extend(vms)),
    );
    assert!(all.finish());
    assert_eq!(*records.lock().unwrap(), parse_pool(&plain).unwrap());
}

#[test]
fn small_pools_stream_in_one_piece() {
    let raw = escape(&read("opennebula-3.8.5/vmpool-info-all.xml"));
    let (ok, pieces) = streamed(&raw);
    assert!(ok);
    assert_eq!(pieces.len(), 1);
    let expected: Vec<i64> = serial(&raw).unwrap().iter().map(|vm| vm.id).collect();
    assert_eq!(pieces[0], expected);
    assert_eq!(streamed("&lt;VM_POOL/&gt;"), (true, vec![vec![]]));
}

#[test]
fn streams_that_cannot_be_read_in_pieces_say_so() {
    // Cut markers inside CDATA: where a cut falls inside one, the pieces around it do not
    // read; any pieces that did are the serial ones.
    let tricky = escape(&big_pool(3000, |i| format!("x</VM><VM>{i}")));
    let (ok, pieces) = streamed(&tricky);
    let expected: Vec<i64> = serial(&tricky).unwrap().iter().map(|vm| vm.id).collect();
    if ok {
        assert_eq!(pieces.concat(), expected);
    } else {
        assert!(expected.starts_with(&pieces.concat()));
    }
    // A VM the fast reading refuses (an attribute) near the end.
    let odd = String::from_utf8(big_pool(3000, |i| format!("vm-{i}")))
        .unwrap()
        .replacen("<VM><ID>2990</ID>", "<VM a=\"1\"><ID>2990</ID>", 1);
    assert!(odd.contains("a=\"1\""));
    let (ok, pieces) = streamed(&escape(odd.as_bytes()));
    assert!(!ok);
    assert!(!pieces.is_empty());
    let (ok, some) = streamed_with(&escape(odd.as_bytes()), 2);
    assert!(!ok);
    assert!((0..3000).collect::<Vec<i64>>().starts_with(&some.concat()));
    assert_eq!(parse_pool(odd.as_bytes()).unwrap().len(), 3000);
    // A document broken near its end: the first pieces were handed over, then `false`.
    let mut broken = big_pool(3000, |i| format!("vm-{i}"));
    let at = broken.len() - 5000;
    broken.splice(at..at, b"<".iter().copied());
    let (ok, pieces) = streamed(&escape(&broken));
    assert!(!ok);
    assert!(!pieces.is_empty());
    // Not a pool at all.
    assert!(!streamed("&lt;VM&gt;&lt;/VM&gt;").0);
    assert!(!streamed("").0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = parse_vm(&bytes);
        let _ = parse_pool(&bytes);
    }

    #[test]
    fn escaped_reads_as_unescaped(cut in 0usize..2455, byte in proptest::prelude::any::<u8>()) {
        let mut raw = escape(&read("opennebula-3.8.5/vmpool-info.xml")).into_bytes();
        let at = cut * raw.len() / 2455;
        raw[at] = byte;
        if let Ok(raw) = std::str::from_utf8(&raw) {
            let got = parse_pool_escaped(raw).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(got, serial(raw));
        }
    }

    #[test]
    fn escaped_reads_as_unescaped_with_tricky_insertions(
        edits in proptest::collection::vec((0usize..3781, 0usize..14), 1..4)
    ) {
        const TRICKY: [&str; 14] = [
            "&amp;", "&amp;amp;", "&#60;", "&#x3E;", "]]&gt;", "]]>", "&lt;![CDATA[",
            "&lt;/VM&gt;&lt;VM&gt;", "\r", "&quot;", "&lt;X/&gt;", "&lt;X&gt;&lt;/X&gt;", ">",
            "&lt;!-- c --&gt;",
        ];
        let mut raw = escape(&read("opennebula-3.8.5/vmpool-info.xml"));
        for (at, which) in edits {
            let mut at = at.min(raw.len());
            while !raw.is_char_boundary(at) {
                at -= 1;
            }
            raw.insert_str(at, TRICKY[which]);
        }
        let got = parse_pool_escaped(&raw).map_err(|e| e.to_string());
        proptest::prop_assert_eq!(got, serial(&raw));
    }

    #[test]
    fn never_panics_on_mangled_capture(cut in 0usize..2436, byte in proptest::prelude::any::<u8>()) {
        let mut xml = read("opennebula-3.8.5/vm-info.xml");
        xml[cut] = byte;
        let _ = parse_vm(&xml);
        xml.truncate(cut);
        proptest::prop_assert!(parse_vm(&xml).is_err());
    }
}
