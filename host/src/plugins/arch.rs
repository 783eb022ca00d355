//! Which CPU and operating system a library was built for, read from its
//! header before `dlopen`, so a library for another platform gets a plain
//! reason ("built for aarch64, this host is x86_64") instead of the dynamic
//! loader's cryptic one.

/// What the header says: an operating system family and a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// `linux` (any ELF system) or `macos`.
    pub os: &'static str,
    /// `x86_64`, `aarch64`, `x86`, `arm`, `riscv64`, `powerpc64`, ... or `unknown`.
    pub arch: &'static str,
}

/// Reads the target from an ELF or (thin) Mach-O header. None for other
/// files, and for universal Mach-O binaries (which carry several).
pub fn target_of(bytes: &[u8]) -> Option<Target> {
    if bytes.len() >= 20 && bytes.starts_with(b"\x7fELF") {
        let little = bytes[5] == 1;
        let machine = if little {
            u16::from_le_bytes([bytes[18], bytes[19]])
        } else {
            u16::from_be_bytes([bytes[18], bytes[19]])
        };
        let arch = match machine {
            0x3e => "x86_64",
            0xb7 => "aarch64",
            0x03 => "x86",
            0x28 => "arm",
            0xf3 => {
                if bytes[4] == 2 {
                    "riscv64"
                } else {
                    "riscv32"
                }
            }
            0x15 => "powerpc64",
            0x16 => "s390x",
            _ => "unknown",
        };
        return Some(Target { os: "linux", arch });
    }
    if bytes.len() >= 8
        && (bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
            || bytes.starts_with(&[0xce, 0xfa, 0xed, 0xfe]))
    {
        let cpu = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let arch = match cpu {
            0x0100_0007 => "x86_64",
            0x0100_000c => "aarch64",
            0x0000_0007 => "x86",
            0x0000_000c => "arm",
            _ => "unknown",
        };
        return Some(Target { os: "macos", arch });
    }
    None
}

/// This host's target, as [`target_of`] names them.
pub fn host() -> Target {
    Target {
        os: if cfg!(target_os = "macos") {
            "macos"
        } else {
            "linux"
        },
        arch: std::env::consts::ARCH,
    }
}

/// Why a library with this header cannot run here, if it cannot.
pub fn mismatch(bytes: &[u8]) -> Option<String> {
    let built = target_of(bytes)?;
    let host = host();
    if built.os != host.os {
        let describe = |os: &str| {
            if os == "macos" {
                "macOS (Mach-O)"
            } else {
                "Linux (ELF)"
            }
        };
        return Some(format!(
            "built for {} on {}, this host is {} on {}",
            built.arch,
            describe(built.os),
            host.arch,
            describe(host.os)
        ));
    }
    if built.arch != host.arch {
        return Some(format!(
            "built for {}, this host is {}",
            built.arch, host.arch
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[5] = 1;
        header[18..20].copy_from_slice(&machine.to_le_bytes());
        header
    }

    #[test]
    fn reads_elf_and_mach_o_headers() {
        assert_eq!(
            target_of(&elf(0x3e)),
            Some(Target {
                os: "linux",
                arch: "x86_64"
            })
        );
        assert_eq!(target_of(&elf(0xb7)).unwrap().arch, "aarch64");
        let mut macho = vec![0xcf, 0xfa, 0xed, 0xfe];
        macho.extend(0x0100_000cu32.to_le_bytes());
        assert_eq!(
            target_of(&macho),
            Some(Target {
                os: "macos",
                arch: "aarch64"
            })
        );
        assert_eq!(target_of(b"hello"), None);
    }

    #[test]
    fn names_both_sides_of_a_mismatch() {
        let other = if host().arch == "aarch64" { 0x3e } else { 0xb7 };
        let message = mismatch(&elf(other)).expect("a mismatch");
        if host().os == "linux" {
            assert!(message.starts_with("built for "), "{message}");
            assert!(
                message.ends_with(&format!("this host is {}", host().arch)),
                "{message}"
            );
        }
        if host()
            == (Target {
                os: "linux",
                arch: "x86_64",
            })
        {
            assert_eq!(mismatch(&elf(0x3e)), None);
            assert_eq!(message, "built for aarch64, this host is x86_64");
        }
    }
}
