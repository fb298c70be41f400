use super::*;
use proptest::prelude::*;

/// Bytes written by Python's `xmlrpc.client.dumps` (an independent encoder).
const PY_CALL: &str = "<?xml version='1.0'?>\n<methodCall>\n<methodName>one.vmpool.info</methodName>\n<params>\n<param>\n<value><string>oneadmin:password</string></value>\n</param>\n<param>\n<value><int>-3</int></value>\n</param>\n<param>\n<value><int>-1</int></value>\n</param>\n<param>\n<value><int>-1</int></value>\n</param>\n<param>\n<value><int>-1</int></value>\n</param>\n</params>\n</methodCall>\n";
const PY_RESPONSE: &str = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n<value><boolean>1</boolean></value>\n<value><string>&lt;VM&gt;a&amp;b&lt;/VM&gt;</string></value>\n<value><int>0</int></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n";
const PY_FAULT: &str = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>-501</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>Not enough parameters</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";

#[test]
fn decodes_python_call() {
    let (method, params) = decode_call(PY_CALL.as_bytes()).unwrap();
    assert_eq!(method, "one.vmpool.info");
    assert_eq!(
        params,
        vec![
            Value::from("oneadmin:password"),
            Value::Int(-3),
            Value::Int(-1),
            Value::Int(-1),
            Value::Int(-1)
        ]
    );
}

#[test]
fn decodes_python_response_and_fault() {
    let v = decode_response(PY_RESPONSE.as_bytes()).unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Bool(true),
            Value::from("<VM>a&b</VM>"),
            Value::Int(0)
        ])
    );
    assert_eq!(
        decode_response(PY_FAULT.as_bytes()),
        Err(XmlRpcError::Fault {
            code: -501,
            message: "Not enough parameters".into()
        })
    );
}

#[test]
fn encodes_exact_response_bytes() {
    let v = Value::Array(vec![Value::Bool(true), Value::from("3.8.5"), Value::Int(0)]);
    assert_eq!(
        encode_response(&v),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n<params>\n<param><value><array><data>\n<value><boolean>1</boolean></value>\n<value><string>3.8.5</string></value>\n<value><i4>0</i4></value>\n</data></array></value></param>\n</params>\n</methodResponse>\n"
    );
    assert_eq!(
        encode_fault(-506, "Method 'x' not defined"),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n<fault>\n<value><struct>\n<member><name>faultCode</name><value><i4>-506</i4></value></member>\n<member><name>faultString</name><value><string>Method 'x' not defined</string></value></member>\n</struct></value>\n</fault>\n</methodResponse>\n"
    );
}

#[test]
fn untyped_values_entities_and_whitespace() {
    let doc = "<methodResponse><params><param><value>  a &amp; b&#33; </value></param></params></methodResponse>";
    assert_eq!(
        decode_response(doc.as_bytes()).unwrap(),
        Value::from("  a & b! ")
    );
    let doc = "<methodResponse><params><param><value>\n  <i8>9000000000</i8>\n</value></param></params></methodResponse>";
    assert_eq!(
        decode_response(doc.as_bytes()).unwrap(),
        Value::Int(9_000_000_000)
    );
    let doc =
        "<methodResponse><params><param><value><string/></value></param></params></methodResponse>";
    assert_eq!(decode_response(doc.as_bytes()).unwrap(), Value::from(""));
    let doc = "<methodResponse><params><param><value><struct><member><name>k</name><value><double>1.5</double></value></member></struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_response(doc.as_bytes()).unwrap(),
        Value::Struct(vec![("k".into(), Value::Double(1.5))])
    );
}

#[test]
fn carriage_returns_survive() {
    let v = Value::from("a\r\nb\rc");
    let doc = encode_response(&v);
    assert_eq!(decode_response(doc.as_bytes()).unwrap(), v);
}

#[test]
fn malformed_documents_are_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"<methodResponse>",
        b"<methodResponse><params><param><value><i4>x</i4></value></param></params></methodResponse>",
        b"<methodResponse><params><param><value><boolean>2</boolean></value></param></params></methodResponse>",
        b"<methodResponse><params><param><value><foo>1</foo></value></param></params></methodResponse>",
        b"<methodCall><params></params></methodCall>",
        b"<other/>",
        b"\xff\xfe<methodResponse/>",
        b"<methodResponse><fault><value><struct></struct></value></fault></methodResponse>",
        b"<methodResponse><params><param><value><string>a<b/></string></value></param></params></methodResponse>",
        b"<methodResponse><params><param><value><string>&bogus;</string></value></param></params></methodResponse>",
    ];
    for case in cases {
        match decode_response(case) {
            Err(XmlRpcError::Malformed { .. }) => {}
            other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(case)),
        }
    }
    let truncated = &PY_RESPONSE.as_bytes()[..PY_RESPONSE.len() / 2];
    assert!(matches!(
        decode_response(truncated),
        Err(XmlRpcError::Malformed { .. })
    ));
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let mut doc = String::from("<methodResponse><params><param><value>");
    for _ in 0..10_000 {
        doc.push_str("<array><data><value>");
    }
    assert!(matches!(
        decode_response(doc.as_bytes()),
        Err(XmlRpcError::Malformed { .. })
    ));
}

fn json_to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap()),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::Struct(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        ),
        serde_json::Value::Null => Value::Nil,
    }
}

/// Every call and reply of the real OpenNebula 3.8.5 session round-trips through the codec.
#[test]
fn real_call_log_round_trips() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/opennebula-3.8.5-calllog/call-log.json"
    ))
    .unwrap();
    let log: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(log.len() > 50, "the capture has many calls");
    let mut faults = 0;
    for entry in &log {
        let method = entry["method"].as_str().unwrap();
        let params: Vec<Value> = entry["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(json_to_value)
            .collect();
        let (m, p) = decode_call(encode_call(method, &params).as_bytes()).unwrap();
        assert_eq!((m.as_str(), &p), (method, &params));
        let response = &entry["response"];
        if let Some(code) = response.get("fault") {
            faults += 1;
            let code = code.as_i64().unwrap() as i32;
            let message = response["faultString"].as_str().unwrap();
            assert_eq!(
                decode_response(encode_fault(code, message).as_bytes()),
                Err(XmlRpcError::Fault {
                    code: i64::from(code),
                    message: message.to_owned()
                })
            );
        } else {
            let v = json_to_value(response);
            assert_eq!(decode_response(encode_response(&v).as_bytes()).unwrap(), v);
        }
    }
    assert!(faults > 0, "the capture includes faults");
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Bool),
        "\\PC*".prop_map(Value::String),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Double),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Base64),
        Just(Value::Nil),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec(("[a-zA-Z_]{1,8}", inner), 0..6).prop_map(Value::Struct),
        ]
    })
}

#[test]
fn raw_responses_keep_string_items_escaped() {
    let raw = decode_response_raw(PY_RESPONSE.as_bytes()).unwrap();
    assert_eq!(
        raw,
        RawResponse::Array(vec![
            RawItem::Value(Value::Bool(true)),
            RawItem::Escaped("&lt;VM&gt;a&amp;b&lt;/VM&gt;"),
            RawItem::Value(Value::Int(0)),
        ])
    );
    assert_eq!(
        decode_response_raw(PY_FAULT.as_bytes()),
        Err(XmlRpcError::Fault {
            code: -501,
            message: "Not enough parameters".into()
        })
    );
    let version = "<methodResponse><params><param><value><string>3.8.5</string></value>\
        </param></params></methodResponse>";
    assert_eq!(
        decode_response_raw(version.as_bytes()),
        Ok(RawResponse::Other(Value::from("3.8.5")))
    );
    let shapes = "<methodResponse><params><param><value> <array><data>\
        <value> <string>a&#33;</string> </value><value/><value>x &amp; y</value>\
        <value><array><data><value><string>&lt;in&gt;</string></value></data></array></value>\
        <value><string/></value></data></array> </value></param></params></methodResponse>";
    assert_eq!(
        decode_response_raw(shapes.as_bytes()),
        Ok(RawResponse::Array(vec![
            RawItem::Escaped("a&#33;"),
            RawItem::Value(Value::from("")),
            RawItem::Value(Value::from("x & y")),
            RawItem::Value(Value::Array(vec![Value::from("<in>")])),
            RawItem::Value(Value::from("")),
        ]))
    );
    for bad in [
        "<methodResponse><params><param><value><array><data><value><string>a<b/></string>\
         </value></data></array></value></param></params></methodResponse>",
        "<methodResponse><params><param><value><array><data><value><string>abc",
        "<methodResponse><params><param><value><array><data><value><string>a</string>\
         </value></array></value></param></params></methodResponse>",
    ] {
        assert!(matches!(
            decode_response_raw(bad.as_bytes()),
            Err(XmlRpcError::Malformed { .. })
        ));
        assert!(decode_response(bad.as_bytes()).is_err());
    }
}

#[test]
fn unescape_resolves_references_and_line_ends() {
    assert_eq!(
        unescape("a&lt;b&gt;c&amp;d&quot;&apos;&#65;&#x42;&#xe9;").unwrap(),
        "a<b>c&d\"'ABé"
    );
    assert_eq!(unescape("x\r\ny\rz&#13;é").unwrap(), "x\ny\nz\ré");
    assert_eq!(unescape("plain").unwrap(), "plain");
    for bad in [
        "&bogus;", "&#0;", "&#xD800;", "&#-1;", "&#+1;", "&lt", "a & b", "&#x;",
    ] {
        assert!(
            matches!(unescape(bad), Err(XmlRpcError::Malformed { .. })),
            "{bad}"
        );
    }
    // Large enough to be unescaped on several threads: the same as a naive replace chain.
    let piece = "&lt;VM&gt;é&amp;amp;x\r\n&#65;&quot;";
    let big = piece.repeat(150_000);
    let naive = big
        .replace("\r\n", "\n")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#65;", "A")
        .replace("&amp;", "&");
    assert!(big.len() > 4 << 20);
    assert_eq!(unescape(&big).unwrap(), naive);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn raw_decoding_gives_the_same_values(v in arb_value()) {
        let doc = encode_response(&v);
        let values = match decode_response_raw(doc.as_bytes()).unwrap() {
            RawResponse::Array(items) => Value::Array(
                items.into_iter().map(|i| i.into_value().unwrap()).collect()
            ),
            RawResponse::Other(value) => value,
        };
        prop_assert_eq!(values, v);
    }

    #[test]
    fn any_value_round_trips(v in arb_value()) {
        prop_assert_eq!(decode_response(encode_response(&v).as_bytes()).unwrap(), v.clone());
        let (m, p) = decode_call(encode_call("one.x", std::slice::from_ref(&v)).as_bytes()).unwrap();
        prop_assert_eq!(m, "one.x");
        prop_assert_eq!(p, vec![v]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_response(&bytes);
        let _ = decode_response_raw(&bytes);
        let _ = decode_call(&bytes);
    }

    #[test]
    fn mutated_documents_never_panic(cut in 0usize..400, byte in any::<u8>()) {
        let mut doc = PY_RESPONSE.as_bytes().to_vec();
        let i = cut % doc.len();
        doc[i] = byte;
        let _ = decode_response(&doc);
        let _ = decode_response(&doc[..i]);
    }
}
