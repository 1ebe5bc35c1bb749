//! Unit tests of the bookkeeping: what survives a power loss.

use super::*;

/// A model with a synced directory `d` holding a synced file `f` with `data`.
fn with_synced_file(data: &[u8]) -> (Model, Ino, Ino) {
    let mut m = Model::default();
    let d = m.mkdir(ROOT, "d").unwrap();
    m.sync(ROOT).unwrap();
    let f = m.create_file(d, "f").unwrap();
    m.write(f, 0, data).unwrap();
    m.sync(f).unwrap();
    m.sync(d).unwrap();
    (m, d, f)
}

fn contents(m: &Model, dir: Ino, name: &str) -> Option<Vec<u8>> {
    let ino = m.lookup(dir, name).ok()?;
    Some(m.read(ino, 0, usize::MAX).unwrap().to_vec())
}

#[test]
fn a_write_then_fsync_survives() {
    let (mut m, d, f) = with_synced_file(b"abc");
    m.write(f, 3, b"def").unwrap();
    m.sync(f).unwrap();
    m.power_loss(Loss::All);
    assert_eq!(contents(&m, d, "f").unwrap(), b"abcdef");
}

#[test]
fn a_write_without_fsync_is_lost() {
    let (mut m, d, f) = with_synced_file(b"abc");
    m.write(f, 3, b"def").unwrap();
    m.write(f, 0, b"X").unwrap();
    assert_eq!(
        contents(&m, d, "f").unwrap(),
        b"Xbcdef",
        "reads see the unsynced writes"
    );
    let report = m.power_loss(Loss::All);
    assert_eq!(contents(&m, d, "f").unwrap(), b"abc");
    assert_eq!(report.dropped_changes, 2);
}

#[test]
fn a_rename_without_a_directory_fsync_is_undone() {
    let (mut m, d, f) = with_synced_file(b"old");
    let tmp = m.create_file(d, "f.tmp").unwrap();
    m.write(tmp, 0, b"new").unwrap();
    m.sync(tmp).unwrap();
    m.rename(d, "f.tmp", d, "f").unwrap();
    assert_eq!(m.lookup(d, "f").unwrap(), tmp);
    m.power_loss(Loss::All);
    assert_eq!(contents(&m, d, "f").unwrap(), b"old");
    assert_eq!(m.lookup(d, "f").unwrap(), f);
    assert!(m.lookup(d, "f.tmp").is_err(), "f.tmp was never durable");
}

#[test]
fn a_rename_with_a_directory_fsync_survives_with_the_synced_data_only() {
    let (mut m, d, _) = with_synced_file(b"old");
    let tmp = m.create_file(d, "f.tmp").unwrap();
    m.write(tmp, 0, b"new").unwrap();
    m.rename(d, "f.tmp", d, "f").unwrap();
    m.sync(d).unwrap();
    m.power_loss(Loss::All);
    // The name is durable, the data (never synced) is not: an empty file.
    assert_eq!(contents(&m, d, "f").unwrap(), b"");
}

#[test]
fn a_create_without_a_directory_fsync_is_undone_even_if_its_data_was_synced() {
    let (mut m, d, _) = with_synced_file(b"x");
    let g = m.create_file(d, "g").unwrap();
    m.write(g, 0, b"data").unwrap();
    m.sync(g).unwrap();
    m.power_loss(Loss::All);
    assert!(m.lookup(d, "g").is_err());
    assert!(m.node(g).is_err(), "an unreachable node is dropped");
}

#[test]
fn an_unlink_without_a_directory_fsync_is_undone() {
    let (mut m, d, _) = with_synced_file(b"keep");
    m.unlink(d, "f").unwrap();
    assert!(m.lookup(d, "f").is_err());
    m.power_loss(Loss::All);
    assert_eq!(contents(&m, d, "f").unwrap(), b"keep");
    m.unlink(d, "f").unwrap();
    m.sync(d).unwrap();
    m.power_loss(Loss::All);
    assert!(m.lookup(d, "f").is_err());
}

#[test]
fn a_truncate_is_durable_only_after_fsync() {
    let (mut m, d, f) = with_synced_file(b"abcdef");
    m.set_len(f, 2).unwrap();
    assert_eq!(contents(&m, d, "f").unwrap(), b"ab");
    m.power_loss(Loss::All);
    assert_eq!(contents(&m, d, "f").unwrap(), b"abcdef");
    let f = m.lookup(d, "f").unwrap();
    m.set_len(f, 2).unwrap();
    m.sync(f).unwrap();
    m.power_loss(Loss::All);
    assert_eq!(contents(&m, d, "f").unwrap(), b"ab");
}

#[test]
fn a_torn_write_keeps_its_first_sectors_and_the_changes_before_it() {
    let (mut m, d, f) = with_synced_file(&[b'a'; 100]);
    m.write(f, 100, &[b'b'; 50]).unwrap();
    m.write(f, 150, &[b'c'; 3 * 4096]).unwrap();
    let report = m.power_loss(Loss::Torn(7));
    let after = contents(&m, d, "f").unwrap();
    let torn = report.torn.expect("a write was torn");
    if torn.contains("at 150") {
        // The second write, cut at a 4 KiB boundary of the file: 4096, 8192 or 12288.
        assert!(
            [4096, 8192, 12288].contains(&after.len()),
            "{torn}: {} bytes",
            after.len()
        );
        assert!(
            after[100..150].iter().all(|&b| b == b'b'),
            "the write before it survives"
        );
        assert!(after[150..].iter().all(|&b| b == b'c'));
    } else {
        // The first write crosses no boundary: it is lost whole, and so is the second.
        assert_eq!(after, vec![b'a'; 100], "{torn}");
    }
}

#[test]
fn torn_writes_land_on_4k_boundaries_for_every_seed() {
    for seed in 0..32 {
        let (mut m, d, f) = with_synced_file(b"");
        m.write(f, 10, &[1; 10_000]).unwrap();
        m.power_loss(Loss::Torn(seed));
        let len = contents(&m, d, "f").unwrap().len();
        assert!(len == 4096 || len == 8192, "seed {seed}: {len} bytes");
    }
}

#[test]
fn a_random_loss_keeps_some_and_drops_some_and_is_seeded() {
    let build = || {
        let (mut m, d, f) = with_synced_file(b"");
        for i in 0..64u8 {
            m.write(f, u64::from(i), &[i + 1]).unwrap();
        }
        (m, d)
    };
    let (mut a, d) = build();
    let (mut b, _) = build();
    let ra = a.power_loss(Loss::Random(3));
    b.power_loss(Loss::Random(3));
    assert_eq!(
        contents(&a, d, "f"),
        contents(&b, d, "f"),
        "same seed, same survivors"
    );
    assert!(ra.kept_changes > 0 && ra.dropped_changes > 0, "{ra:?}");
}

#[test]
fn reads_see_unsynced_state_and_a_clean_sync_all_keeps_it() {
    let (mut m, d, f) = with_synced_file(b"a");
    m.write(f, 1, b"b").unwrap();
    let g = m.create_file(d, "g").unwrap();
    m.write(g, 0, b"g").unwrap();
    m.sync_all();
    m.power_loss(Loss::All);
    assert_eq!(contents(&m, d, "f").unwrap(), b"ab");
    assert_eq!(contents(&m, d, "g").unwrap(), b"g");
}

#[test]
fn errors_are_errnos() {
    let (mut m, d, _) = with_synced_file(b"");
    assert_eq!(m.create_file(d, "f"), Err(libc::EEXIST));
    assert_eq!(m.lookup(d, "nope"), Err(libc::ENOENT));
    assert_eq!(m.rmdir(ROOT, "d"), Err(libc::ENOTEMPTY));
    assert_eq!(m.unlink(ROOT, "d"), Err(libc::EISDIR));
}

#[test]
fn a_torn_loss_prefers_a_write_that_a_boundary_can_tear() {
    for seed in 0..16 {
        let (mut m, d, f) = with_synced_file(b"");
        m.write(f, 0, &[1; 100]).unwrap();
        m.write(f, 4000, &[2; 200]).unwrap();
        m.write(f, 4200, &[3; 100]).unwrap();
        let report = m.power_loss(Loss::Torn(seed));
        let after = contents(&m, d, "f").unwrap();
        assert_eq!(after.len(), 4096, "seed {seed}: {report:?}");
        assert_eq!(
            &after[4000..],
            &[2; 96],
            "seed {seed}: the second write, cut at 4096"
        );
        assert_eq!(
            report.kept_changes, 2,
            "the first write and the torn part of the second"
        );
    }
}
