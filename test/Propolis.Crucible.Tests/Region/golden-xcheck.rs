// Golden-byte cross-check for OnDiskFormatTests and RegionDefinitionTests (not part of the build).
//
// Build offline with Debian's packaged crates:
//   apt-get install librust-bincode-dev librust-serde-derive-dev librust-serde-json-dev
//   Cargo.toml: [dependencies] bincode = "1.3", serde = { version = "1", features = ["derive"] }, serde_json = "1"
//   .cargo/config.toml: [source.crates-io] replace-with = "debian"
//                       [source.debian] directory = "/usr/share/cargo/registry"
//   cargo run
//
// Cross-check: the real crucible structs (field order copied from crucible at 6d037cb), encoded
// with the same serde/bincode/serde_json calls the real code makes.
use serde::{Deserialize, Serialize};
#[derive(Serialize, Deserialize, Clone, Copy)]
struct EncryptionContext { nonce: [u8; 12], tag: [u8; 16] }
#[derive(Serialize, Deserialize, Clone, Copy)]
struct BlockContext { hash: u64, encryption_context: Option<EncryptionContext> }
#[derive(Serialize, Deserialize, Clone, Copy)]
struct OnDiskDownstairsBlockContext { block_context: BlockContext, on_disk_hash: u64, flush_id: u16 }
#[derive(Serialize, Deserialize)]
struct OnDiskMeta { dirty: bool, gen_number: u64, flush_number: u64, ext_version: u32, bonus_sync_count: u32, defrag_count: u32 }
#[derive(Serialize)]
struct Block { value: u64, shift: u32 }
#[derive(Serialize)]
struct RegionDefinition { block_size: u64, extent_size: Block, extent_count: u32, uuid: String, encrypted: bool, database_read_version: usize, database_write_version: usize }
fn hex(b: &[u8]) -> String { b.iter().map(|x| format!("{:02x}", x)).collect() }
fn slot(d: Option<OnDiskDownstairsBlockContext>) -> String {
    let mut buf = [0u8; 48];
    bincode::serialize_into(&mut buf[..], &d).unwrap();
    hex(&buf)
}
fn main() {
    println!("empty {}", slot(None));
    let plain = OnDiskDownstairsBlockContext { block_context: BlockContext { hash: 0x0123456789abcdef, encryption_context: None }, on_disk_hash: 0xfedcba9876543210, flush_id: 0x1234 };
    println!("plain {}", slot(Some(plain)));
    let mut nonce = [0u8; 12]; for i in 0..12 { nonce[i] = 0xa0 + i as u8; }
    let mut tag = [0u8; 16]; for i in 0..16 { tag[i] = 0xb0 + i as u8; }
    let enc = OnDiskDownstairsBlockContext { block_context: BlockContext { hash: 0x1122334455667788, encryption_context: Some(EncryptionContext { nonce, tag }) }, on_disk_hash: 0x99aabbccddeeff00, flush_id: 7 };
    println!("enc {}", slot(Some(enc)));
    let m = OnDiskMeta { dirty: true, gen_number: 0x0102030405060708, flush_number: 0x1112131415161718, ext_version: 2, bonus_sync_count: 0x21222324, defrag_count: 0x31323334 };
    let mut buf = [0u8; 32];
    bincode::serialize_into(&mut buf[..], &m).unwrap();
    println!("meta {}", hex(&buf));
    let m0 = OnDiskMeta { dirty: false, gen_number: 0, flush_number: 0, ext_version: 2, bonus_sync_count: 0, defrag_count: 0 };
    let mut buf = [0u8; 32];
    bincode::serialize_into(&mut buf[..], &m0).unwrap();
    println!("meta0 {}", hex(&buf));
    let d = RegionDefinition { block_size: 512, extent_size: Block { value: 100, shift: 9 }, extent_count: 15, uuid: "12345678-90ab-cdef-1234-567890abcdef".into(), encrypted: false, database_read_version: 1, database_write_version: 1 };
    let mut j = serde_json::to_vec_pretty(&d).unwrap(); j.push(b'\n');
    print!("json\n{}", String::from_utf8(j).unwrap());
}
