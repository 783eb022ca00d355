use std::io::Read;

use super::*;

/// A `.tar.gz` holding `name` with `size` zero bytes (a few KiB on disk).
fn zeros_archive(dir: &Path, name: &str, size: u64) -> PathBuf {
    let path = dir.join("zeros.tar.gz");
    let file = std::fs::File::create(&path).unwrap();
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    archive
        .append_data(&mut header, name, std::io::repeat(0).take(size))
        .unwrap();
    archive.into_inner().unwrap().finish().unwrap();
    path
}

/// An ELF header for CPU `machine` (64-bit, little-endian).
fn elf(machine: u16) -> Vec<u8> {
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 2;
    header[5] = 1;
    header[18..20].copy_from_slice(&machine.to_le_bytes());
    header
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigilo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_library_must_be_built_for_its_target() {
    let path = Path::new("target/release/libmy_plugin.so");
    let x86_64 = elf(0x3e);
    assert!(check_library_target("x86_64-unknown-linux-gnu", path, &x86_64).is_ok());
    assert_eq!(
        check_library_target("aarch64-unknown-linux-gnu", path, &x86_64)
            .unwrap_err()
            .to_string(),
        "--lib aarch64-unknown-linux-gnu=target/release/libmy_plugin.so: that library is \
         built for x86_64 Linux (ELF), not for aarch64-unknown-linux-gnu (aarch64 Linux \
         (ELF)); build it with `cargo build --release --target aarch64-unknown-linux-gnu` \
         and pass target/aarch64-unknown-linux-gnu/release/libmy_plugin.so"
    );
    // An ELF library is not a macOS one, whatever its CPU.
    let error = check_library_target("x86_64-apple-darwin", path, &x86_64).unwrap_err();
    assert!(
        error.to_string().contains("built for x86_64 Linux (ELF)"),
        "{error}"
    );
    let error = check_library_target("aarch64-unknown-linux-gnu", path, b"not a library")
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a shared library"), "{error}");
    let error = check_library_target("wasm32-unknown-unknown", path, &x86_64)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot tell which CPU"), "{error}");
    // A universal macOS library holds both CPUs.
    let mut fat = vec![0xca, 0xfe, 0xba, 0xbe];
    fat.extend(2u32.to_be_bytes());
    for cpu in [0x0100_0007u32, 0x0100_000c] {
        fat.extend(cpu.to_be_bytes());
        fat.extend([0u8; 16]);
    }
    assert!(check_library_target("aarch64-apple-darwin", path, &fat).is_ok());
    assert!(check_library_target("x86_64-apple-darwin", path, &fat).is_ok());
}

#[test]
fn packaging_refuses_a_library_under_the_wrong_triple_before_loading_anything() {
    let dir = scratch("arch");
    let host = host_target();
    let other_target = if std::env::consts::ARCH == "aarch64" {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    // This machine's library, given again as the other target's.
    let this_machine = if std::env::consts::ARCH == "aarch64" {
        elf(0xb7)
    } else {
        elf(0x3e)
    };
    let native = dir.join("libnative.so");
    std::fs::write(&native, &this_machine).unwrap();
    let request = PackageRequest {
        libraries: BTreeMap::from([
            (host.clone(), native.clone()),
            (other_target.to_owned(), native.clone()),
        ]),
        frontend_dir: None,
        signing_key: None,
        vigilo_version: DEFAULT_VIGILO_VERSION.into(),
        out: dir.join("out.tar.gz"),
    };
    let error = package(&request).unwrap_err().to_string();
    if cfg!(target_os = "linux") {
        assert!(
            error.starts_with(&format!(
                "--lib {other_target}={}: that library is built for {}",
                native.display(),
                std::env::consts::ARCH
            )),
            "{error}"
        );
    }
    assert!(!request.out.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Writes a bundle with one library, signed with `key` if given; with
/// `tamper`, the library differs from its listed checksum.
fn write_bundle(dir: &Path, key: Option<&SigningKey>, tamper: bool) -> PathBuf {
    let library = b"\x7fELF a library".to_vec();
    let manifest = BundleManifest {
        bundle_format: BUNDLE_FORMAT,
        name: "my_plugin".into(),
        kind: "field_type".into(),
        version: "0.1.0".into(),
        compatible_with: ">=0.1, <0.2".into(),
        sdk_abi_version: 1,
        sdk_version: "0.1.0".into(),
        description: String::new(),
        libraries: BTreeMap::from([(
            "x86_64-unknown-linux-gnu".to_owned(),
            BundleFile {
                file: "lib/x86_64-unknown-linux-gnu/libmy_plugin.so".into(),
                sha256: sha256_hex(&library),
            },
        )]),
        frontend: vec![],
        signed_by: key.map(|k| hex::encode(k.verifying_key().to_bytes())),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let path = dir.join(format!(
        "bundle-{}-{tamper}.tar.gz",
        if key.is_some() { "signed" } else { "unsigned" }
    ));
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    ));
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, bytes).unwrap();
    };
    add(MANIFEST, &manifest_bytes);
    if let Some(key) = key {
        add(
            SIGNATURE,
            hex::encode(key.sign(&manifest_bytes).to_bytes()).as_bytes(),
        );
    }
    let mut shipped = library.clone();
    if tamper {
        shipped.push(b'!');
    }
    add("lib/x86_64-unknown-linux-gnu/libmy_plugin.so", &shipped);
    archive.into_inner().unwrap().finish().unwrap();
    path
}

#[test]
fn signatures_are_checked_against_the_given_keys() {
    let dir = scratch("signatures");
    let vendor = SigningKey::from_bytes(&[7; 32]);
    let public = hex::encode(vendor.verifying_key().to_bytes());
    let stranger = hex::encode(SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes());

    let signed = Bundle::read(&write_bundle(&dir, Some(&vendor), false)).unwrap();
    assert_eq!(
        signed
            .check_signature(std::slice::from_ref(&public))
            .unwrap(),
        SignatureCheck::Valid(public.clone())
    );
    assert_eq!(
        signed
            .check_signature(&[stranger.clone(), public.clone()])
            .unwrap(),
        SignatureCheck::Valid(public.clone())
    );
    assert_eq!(
        signed
            .check_signature(std::slice::from_ref(&stranger))
            .unwrap(),
        SignatureCheck::Invalid(format!(
            "the signature does not verify with the given key (it says it was signed by {public})"
        ))
    );
    assert!(signed.check_files().is_ok());
    assert_eq!(
        signed.verify(std::slice::from_ref(&public), false).unwrap(),
        Signed::By(public.clone())
    );

    let unsigned = Bundle::read(&write_bundle(&dir, None, false)).unwrap();
    assert_eq!(
        unsigned
            .check_signature(std::slice::from_ref(&public))
            .unwrap(),
        SignatureCheck::Unsigned
    );

    let tampered = Bundle::read(&write_bundle(&dir, Some(&vendor), true)).unwrap();
    assert!(tampered
        .check_files()
        .unwrap_err()
        .to_string()
        .starts_with("checksum mismatch for lib/x86_64-unknown-linux-gnu/libmy_plugin.so"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn trusted_keys_files_hold_one_key_a_line() {
    let dir = scratch("trusted-keys");
    let key = hex::encode(SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes());
    let file = dir.join("trusted");
    std::fs::write(&file, format!("# Acme's release key\n\n  {key}  \n")).unwrap();
    assert_eq!(read_trusted_keys(&file).unwrap(), vec![key]);
    std::fs::write(&file, "# nothing\n").unwrap();
    assert!(read_trusted_keys(&file)
        .unwrap_err()
        .to_string()
        .contains("holds no key"));
    std::fs::write(&file, "abc\n").unwrap();
    let error = format!("{:#}", read_trusted_keys(&file).unwrap_err());
    assert!(error.contains("line 1"), "{error}");
    assert!(error.contains("is not a hex Ed25519 public key"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bundle_that_unpacks_past_the_limit_is_refused_before_it_fills_memory() {
    let dir = std::env::temp_dir().join(format!("vigilo-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = zeros_archive(&dir, "lib/x/libbig.so", 3 * 1024 * 1024);
    assert!(std::fs::metadata(&path).unwrap().len() < 64 * 1024);
    let err = Bundle::read_within(&path, 2 * 1024 * 1024)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(err, "the bundle unpacks to more than 2 MiB");
    // Within the limit it is read (and then refused for what it is).
    let err = Bundle::read_within(&path, 4 * 1024 * 1024)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a Vigilo plugin bundle"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
