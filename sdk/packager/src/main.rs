//! `vigilo-plugin`: packages Vigilo plugins as signed binary release bundles.
//!
//! ```text
//! vigilo-plugin new my_plugin --kind field_type|dashboard_widget|integration_adapter|celery_task
//! vigilo-plugin dev [--crate DIR] [--port 8700]
//! vigilo-plugin keygen --out vendor.key
//! vigilo-plugin package --lib x86_64-unknown-linux-gnu=target/release/libmy_plugin.so \
//!                       --lib aarch64-unknown-linux-gnu=target/aarch64-unknown-linux-gnu/release/libmy_plugin.so \
//!                       [--frontend frontend/] [--sign vendor.key] --out my_plugin-0.1.0.tar.gz
//! vigilo-plugin inspect my_plugin-0.1.0.tar.gz [--key HEX]... [--trusted-keys FILE]
//! vigilo-plugin check target/release/libmy_plugin.so [--vigilo-version 0.1.0]
//! ```
//!
//! `package` and `check` refuse a library a Vigilo server would refuse (the
//! server's loader checks against `--vigilo-version`, by default the server
//! version of this SDK, and the frontend rules of
//! `vigilo_sdk::loader::frontend`), naming each reason.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand};
use vigilo_plugin_bundle::{
    check_release, dev, keygen, package, parse_public_key, read_signing_key, read_trusted_keys,
    scaffold, Bundle, PackageRequest, SignatureCheck, DEFAULT_VIGILO_VERSION,
};
use vigilo_sdk::PluginKind;

#[derive(Parser)]
#[command(
    name = "vigilo-plugin",
    version,
    about = "Create, check, run and package Vigilo plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a plugin crate of one kind that builds, passes its tests and
    /// loads into a server as it stands
    New {
        /// The plugin's name: 1-64 of a-z, 0-9 and _, starting with a letter
        /// (also the crate's name)
        name: String,
        /// What the plugin provides
        #[arg(long, value_parser = kind_parser())]
        kind: PluginKind,
        /// The directory to create (default: ./NAME); must not exist or be empty
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The Vigilo SDK's directory, for the crate's path dependency
        /// (default: the SDK this tool was built from)
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Build the plugin crate, run a scratch Vigilo server with it installed,
    /// and rebuild, reinstall and reload open pages on every change
    Dev {
        /// The plugin crate's directory
        #[arg(long = "crate", value_name = "DIR", default_value = ".")]
        crate_dir: PathBuf,
        /// The port the scratch server listens on (127.0.0.1 only)
        #[arg(long, default_value_t = 8700)]
        port: u16,
        /// The vigilo-server binary (default: next to vigilo-plugin, or on PATH)
        #[arg(long, value_name = "PATH")]
        server: Option<PathBuf>,
        /// The scratch server's admin
        #[arg(long, default_value = "dev@example.com")]
        email: String,
    },
    /// Create an Ed25519 signing key (hex, mode 0600) and print its public key
    Keygen {
        /// Where to write the private key (must not exist)
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a bundle from built libraries
    Package {
        /// TARGET=PATH: a built library for a target triple (repeatable; include this machine's)
        #[arg(long = "lib", value_name = "TARGET=PATH", required = true)]
        libs: Vec<String>,
        /// The plugin's frontend source directory: checked to hold exactly the files embedded in the library (which the bundle ships either way)
        #[arg(long, value_name = "DIR")]
        frontend: Option<PathBuf>,
        /// Sign the bundle with this key (from `vigilo-plugin keygen`)
        #[arg(long, value_name = "KEYFILE")]
        sign: Option<PathBuf>,
        /// The bundle to write (.tar.gz)
        #[arg(long)]
        out: PathBuf,
        /// The Vigilo server version the plugin must be accepted by
        #[arg(long, value_name = "VERSION", default_value = DEFAULT_VIGILO_VERSION)]
        vigilo_version: String,
    },
    /// Check a built library as a Vigilo server would (its loader checks and
    /// the frontend rules); exit 1 naming each reason it would be refused
    Check {
        /// The built library (.so/.dylib) for this machine
        lib: PathBuf,
        /// The Vigilo server version the plugin must be accepted by
        #[arg(long, value_name = "VERSION", default_value = DEFAULT_VIGILO_VERSION)]
        vigilo_version: String,
    },
    /// Print a bundle's manifest; with --key or --trusted-keys, verify its signature and checksums
    Inspect {
        bundle: PathBuf,
        /// A hex Ed25519 public key to verify the signature with (repeatable)
        #[arg(long = "key", value_name = "HEX")]
        keys: Vec<String>,
        /// A file of trusted hex public keys, one per line (`#` starts a comment)
        #[arg(long, value_name = "FILE")]
        trusted_keys: Option<PathBuf>,
    },
}

fn kind_parser() -> impl clap::builder::TypedValueParser<Value = PluginKind> {
    clap::builder::PossibleValuesParser::new(PluginKind::ALL.map(PluginKind::as_str))
        .map(|kind| PluginKind::from_wire(&kind).expect("one of the listed kinds"))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::New {
            name,
            kind,
            dir,
            sdk,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = sdk.or_else(scaffold::default_sdk_dir).ok_or_else(|| {
                anyhow!("the SDK this tool was built from has moved: pass --sdk DIR (the `sdk` directory of a Vigilo checkout)")
            })?;
            let written = scaffold::create(&scaffold::NewPlugin {
                name: name.clone(),
                kind,
                dir: dir.clone(),
                sdk,
            })?;
            println!("created the {kind} plugin {name} in {}:", dir.display());
            for path in written {
                println!("  {path}");
            }
            println!();
            println!("next:");
            println!("  cd {}", dir.display());
            println!("  cargo test            # the plugin's tests and the server's check of its library");
            println!("  vigilo-plugin dev     # a scratch server with the plugin, rebuilt on every change");
        }
        Command::Dev {
            crate_dir,
            port,
            server,
            email,
        } => dev::run(&dev::DevOptions {
            crate_dir,
            port,
            server,
            email,
        })?,
        Command::Keygen { out } => {
            let public = keygen(&out)?;
            println!("{public}");
            eprintln!(
                "wrote the private key to {}; give operators the public key above for trusted_plugin_keys",
                out.display()
            );
        }
        Command::Package {
            libs,
            frontend,
            sign,
            out,
            vigilo_version,
        } => {
            let mut libraries = BTreeMap::new();
            for lib in libs {
                let (target, path) = lib
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--lib {lib}: expected TARGET=PATH"))?;
                libraries.insert(target.trim().to_owned(), PathBuf::from(path.trim()));
            }
            let signing_key = sign.as_deref().map(read_signing_key).transpose()?;
            let manifest = package(&PackageRequest {
                libraries,
                frontend_dir: frontend,
                signing_key,
                vigilo_version,
                out: out.clone(),
            })?;
            println!(
                "{} {} ({}) for {} -> {}{}",
                manifest.name,
                manifest.version,
                manifest.kind,
                manifest
                    .libraries
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                out.display(),
                if manifest.signed_by.is_some() {
                    ", signed"
                } else {
                    ", unsigned"
                }
            );
        }
        Command::Check {
            lib,
            vigilo_version,
        } => {
            let checked = check_release(&lib, &vigilo_version)
                .map_err(|refused| anyhow!("{}: {refused}", lib.display()))?;
            println!(
                "{} {} ({}): a Vigilo {vigilo_version} server would accept it",
                checked.manifest.name, checked.manifest.version, checked.manifest.kind
            );
        }
        Command::Inspect {
            bundle,
            keys,
            trusted_keys,
        } => {
            for key in &keys {
                parse_public_key(key).map_err(|e| anyhow!("--key: {e}"))?;
            }
            let mut keys = keys;
            if let Some(file) = &trusted_keys {
                keys.extend(read_trusted_keys(file)?);
            }
            let bundle = Bundle::read(&bundle)?;
            println!("{}", String::from_utf8_lossy(&bundle.manifest_bytes));
            if keys.is_empty() {
                println!(
                    "signature: {}",
                    if bundle.signature.is_some() {
                        "present (not verified: pass --key HEX or --trusted-keys FILE)"
                    } else {
                        "none"
                    }
                );
                return Ok(());
            }
            let files = bundle.check_files();
            match &files {
                Ok(()) => println!("files:     every checksum matches"),
                Err(e) => println!("files:     INVALID: {e}"),
            }
            match bundle.check_signature(&keys)? {
                SignatureCheck::Valid(key) => println!("signature: valid (signed by {key})"),
                SignatureCheck::Invalid(reason) => {
                    println!("signature: INVALID: {reason}");
                    bail!("the bundle's signature is invalid");
                }
                SignatureCheck::Unsigned => {
                    println!("signature: none (the bundle is not signed)");
                    bail!("the bundle is not signed");
                }
            }
            files.map_err(|_| anyhow!("the bundle's files do not match its manifest"))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigilo-plugin: {e:#}");
            ExitCode::FAILURE
        }
    }
}
