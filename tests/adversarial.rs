//! The binary under attack, end to end: planted symbolic links, files that are not regular,
//! decompression and archive bombs under a memory limit, forged checkpoints, two runs on one
//! folder, kills at random moments. Each attack must end in a one-line error and exit 1 (or,
//! for valid input, success), never a panic, an abort, a hang or a file written elsewhere.
//!
//! The long versions (50 kills of a real MNIST run) are `#[ignore]`d; README.md ("Tests")
//! gives their commands.

mod common;

use common::{bin, one_line_error, small_model, temp_dir};
use ferrograd::artifacts::ModelFile;
use ferrograd::data::idx;
use ferrograd::train::Checkpoint;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd`, failing the test if it takes longer than `secs` (a hang is a failure too).
fn run_within(cmd: &mut Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().unwrap();
            panic!("{cmd:?} still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `cmd` with its address space limited to `bytes` (`ulimit -v`) in the child.
fn with_memory_limit(cmd: &mut Command, bytes: u64) -> &mut Command {
    // SAFETY: only setrlimit, async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An IDX dataset folder: `train` and `test` images of `side`×`side` (labels cycle 0..9).
fn idx_folder(
    name: &str,
    train: usize,
    test: usize,
    train_side: usize,
    test_side: usize,
) -> PathBuf {
    let dir = temp_dir(name);
    let write = |stem: &str, n: usize, side: usize| {
        let px: Vec<u8> = (0..n * side * side).map(|i| (i * 37 % 256) as u8).collect();
        std::fs::write(
            dir.join(format!("{stem}-images-idx3-ubyte")),
            idx::encode(&[n, side, side], &px),
        )
        .unwrap();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{stem}-labels-idx1-ubyte")),
            idx::encode(&[n], &labels),
        )
        .unwrap();
    };
    write("train", train, train_side);
    write("t10k", test, test_side);
    dir
}

fn train_cmd(out: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["--threads", "1", "train", "--dataset", "digits", "--out"])
        .arg(out)
        .args(extra);
    c
}

/// Every file ferrograd leaves in `dir` parses as what its name says, and no temporary file
/// is there at all; returns how many files there are.
fn every_file_parses(dir: &Path) -> usize {
    every_file_parses_leaving_temps_of(dir, Some(0))
}

// ─── 1. Files written where they should not be ──────────────────────────────────────────────

#[test]
fn planted_links_in_the_output_folder_never_redirect_a_write() {
    let dir = temp_dir("links");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("models")).unwrap();
    std::fs::create_dir_all(out.join("results")).unwrap();
    // Links at the final names and at temporary names of every scheme ferrograd has used:
    // the final ones are replaced (rename does not follow), the others are never opened.
    let names = [
        "models/model_relu_digits.msgpack",
        "results/results_relu_digits.json",
        "models/.model_relu_digits.msgpack.tmp-1",
    ];
    for n in names {
        std::os::unix::fs::symlink(&victim, out.join(n)).unwrap();
    }
    let o = run_within(
        &mut train_cmd(&out, &["--epochs", "1", "--hidden", "16"]),
        120,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    ModelFile::load(&out.join("models/model_relu_digits.msgpack")).unwrap();
    assert!(
        !std::fs::symlink_metadata(out.join("models/model_relu_digits.msgpack"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A link in place of a folder the run writes into is refused before any work.
    let out2 = dir.join("out2");
    std::fs::create_dir_all(&out2).unwrap();
    std::os::unix::fs::symlink(&dir, out2.join("models")).unwrap();
    let e = one_line_error(&run_within(&mut train_cmd(&out2, &["--epochs", "1"]), 60));
    assert!(e.contains("models") && e.contains("link"), "{e}");
    // So is a link in place of the lock file.
    let out3 = dir.join("out3");
    std::fs::create_dir_all(&out3).unwrap();
    std::os::unix::fs::symlink(&victim, out3.join(ferrograd::lock::LOCK_FILE)).unwrap();
    let e = one_line_error(&run_within(&mut train_cmd(&out3, &["--epochs", "1"]), 60));
    assert!(e.contains("lock file"), "{e}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn exclusive_creation_refuses_whatever_is_already_there() {
    let dir = temp_dir("exclusive");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"v").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    for p in [&victim, &link, &dangling] {
        assert!(
            ferrograd::files::create_exclusive(p).is_err(),
            "{}",
            p.display()
        );
    }
    assert!(!dir.join("nowhere").exists());
    assert_eq!(std::fs::read(&victim).unwrap(), b"v");
}

// ─── 2. Files that are not regular files ─────────────────────────────────────────────────────

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn fifos_devices_and_folders_are_refused_as_models_and_data_without_blocking() {
    let dir = temp_dir("nonregular");
    let fifo = dir.join("model.msgpack");
    mkfifo(&fifo);
    let folder = dir.join("folder.msgpack");
    std::fs::create_dir_all(&folder).unwrap();
    let out = dir.join("out");
    for model in [fifo.as_path(), Path::new("/dev/zero"), folder.as_path()] {
        for cmd in [&["predict"][..], &["analyze", "hessian"][..]] {
            let o = run_within(
                bin()
                    .args(cmd)
                    .arg("--model")
                    .arg(model)
                    .arg("--out")
                    .arg(&out),
                30,
            );
            let e = one_line_error(&o);
            assert!(
                e.contains("not a regular file") || e.contains("cannot"),
                "{e}"
            );
        }
    }
    // A FIFO under a data file's name.
    let data = idx_folder("nonregular-data", 20, 10, 28, 28);
    std::fs::remove_file(data.join("train-images-idx3-ubyte")).unwrap();
    mkfifo(&data.join("train-images-idx3-ubyte"));
    let o = run_within(
        bin()
            .args(["train", "--dataset", "mnist", "--epochs", "1", "--data-dir"])
            .arg(&data)
            .arg("--out")
            .arg(&out),
        30,
    );
    let e = one_line_error(&o);
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("not a regular file"),
        "{e}"
    );
}

// ─── 3. Bombs under a memory limit ───────────────────────────────────────────────────────────

/// A gzip of `members` copies of one member inflating to `chunk` zero bytes, after `head`.
fn multi_member_bomb(head: &[u8], chunk: usize, members: usize) -> Vec<u8> {
    let mut out = gzip(head);
    let member = gzip(&vec![0u8; chunk]);
    for _ in 0..members {
        out.extend_from_slice(&member);
    }
    out
}

#[test]
fn decompression_bombs_are_refused_from_the_header_under_a_memory_limit() {
    // 1 GB of pixels (5 GB decoded) from a few MB of gzip; the process may have 1 GiB.
    let (n, side) = (1_300_000usize, 28usize);
    let data = idx_folder("bomb", 10, 10, side, side);
    let head = idx::encode(&[n, side, side], &[]);
    std::fs::write(
        data.join("train-images-idx3-ubyte.gz"),
        multi_member_bomb(&head, 8 << 20, 4),
    )
    .unwrap();
    std::fs::remove_file(data.join("train-images-idx3-ubyte")).unwrap();
    let out = temp_dir("bomb-out");
    let limit = 1u64 << 30;
    let train = |memory: Option<&str>| {
        let mut c = bin();
        c.args([
            "--threads",
            "1",
            "train",
            "--dataset",
            "mnist",
            "--epochs",
            "1",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&out);
        if let Some(m) = memory {
            c.env(ferrograd::limits::DATA_MEMORY_VAR, m);
        }
        run_within(with_memory_limit(&mut c, limit), 60)
    };
    // The default budget is half the address-space limit: refused from the header.
    let e = one_line_error(&train(None));
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("MAX_DATA_MEMORY"),
        "{e}"
    );
    // A budget raised past what the process may have: the allocation fails as an error.
    let e = one_line_error(&train(Some("64G")));
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("cannot allocate"),
        "{e}"
    );
    // A malformed budget is a one-line error too.
    let e = one_line_error(&train(Some("lots")));
    assert!(e.contains("MAX_DATA_MEMORY"), "{e}");
}

/// A tar.gz holding one header that claims `size` bytes, followed by `data`.
fn tar_claiming(path: &str, size: u64, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    raw.extend_from_slice(data);
    gzip(&raw)
}

#[test]
fn archive_bombs_and_half_good_archives_leave_nothing_behind() {
    use ferrograd::data::cifar;
    let dir = temp_dir("tarbomb");
    // One entry claiming 100 GB: refused from its header, before a byte is written.
    let archive = dir.join("bomb.tar.gz");
    std::fs::write(
        &archive,
        tar_claiming(
            "cifar-10-batches-bin/data_batch_1.bin",
            100 << 30,
            &[0; 512],
        ),
    )
    .unwrap();
    let dest = dir.join("dest");
    let e = format!("{:#}", cifar::unpack(&archive, &dest).unwrap_err());
    assert!(e.contains("MiB"), "{e}");
    assert_eq!(
        std::fs::read_dir(&dest).unwrap().count(),
        0,
        "something was left in {}",
        dest.display()
    );

    // Good entries, then a bad one: none of the good ones may be kept for a later run.
    let good = cifar::encode(&[(1, vec![5; 3072])]);
    let mut b = tar::Builder::new(Vec::new());
    for f in cifar::TRAIN_FILES {
        let mut h = tar::Header::new_gnu();
        h.set_size(good.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("{}/{f}", cifar::FOLDER), &good[..])
            .unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_cksum();
    b.append_link(
        &mut h,
        format!("{}/{}", cifar::FOLDER, cifar::TEST_FILE),
        "/etc/passwd",
    )
    .unwrap();
    let archive = dir.join("cifar-10-binary.tar.gz");
    std::fs::write(&archive, gzip(&b.into_inner().unwrap())).unwrap();
    let o = run_within(
        bin()
            .current_dir(&dir)
            .args([
                "train",
                "--dataset",
                "cifar10",
                "--epochs",
                "1",
                "--data-dir",
            ])
            .arg(&dir)
            .arg("--out")
            .arg(dir.join("out")),
        60,
    );
    let e = one_line_error(&o);
    assert!(e.contains("not a plain file"), "{e}");
    let local = dir.join("data/cifar10");
    let left: Vec<_> = std::fs::read_dir(&local)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_failed_download_leaves_no_folder() {
    let dir = temp_dir("download");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let o = run_within(
        bin()
            .current_dir(&dir)
            // Nothing listens on port 9 of the loopback: the download fails at once.
            .env(ferrograd::data::MIRROR_VAR, "http://127.0.0.1:9")
            .args(["train", "--dataset", "mnist", "--epochs", "1", "--data-dir"])
            .arg(dir.join("empty"))
            .arg("--out")
            .arg(dir.join("out")),
        60,
    );
    // The progress line "downloading ..." comes first; the error is the last line.
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let e = stderr.lines().last().unwrap();
    assert!(
        e.starts_with("error: ") && e.contains("download failed"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("data"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn multi_member_gzip_is_read_whole() {
    let images = idx::encode(&[3, 5, 4], &(0..60u8).collect::<Vec<_>>());
    for cut in [1, 10, 16, 40, images.len() - 1] {
        let mut two = gzip(&images[..cut]);
        two.extend(gzip(&images[cut..]));
        let got = idx::parse_images_bytes(&two, Path::new("two-members.gz")).unwrap();
        assert_eq!(got.pixels, (0..60u8).collect::<Vec<_>>(), "cut at {cut}");
    }
}

// ─── 4. Unbounded work from small inputs ─────────────────────────────────────────────────────

#[test]
fn depth_is_bounded_and_the_deepest_accepted_model_runs() {
    let out = temp_dir("depth");
    let deepest = vec!["2"; ferrograd::limits::MAX_HIDDEN_LAYERS].join(",");
    let o = run_within(
        &mut train_cmd(
            &out,
            &["--epochs", "1", "--hidden", &deepest, "--examples", "1"],
        ),
        300,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let too_deep = vec!["2"; ferrograd::limits::MAX_HIDDEN_LAYERS + 1].join(",");
    let o = run_within(&mut train_cmd(&out, &["--hidden", &too_deep]), 30);
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("at most"));
    // A model file of 20,000 layers: refused by the loader, not by a stack overflow.
    let mut m = small_model();
    let layer = m.layers[0].clone();
    m.architecture = vec![4; 20_001];
    m.architecture.push(2);
    m.layers = vec![layer; 20_001];
    let path = out.join("deep.msgpack");
    std::fs::write(&path, m.to_bytes().unwrap()).unwrap();
    let e = one_line_error(&run_within(
        bin()
            .args(["predict", "--model"])
            .arg(&path)
            .arg("--out")
            .arg(&out),
        30,
    ));
    assert!(e.contains("hidden layers"), "{e}");
}

#[test]
fn dropping_a_long_graph_does_not_recurse() {
    // Run in a thread with a small stack: a recursive drop of this chain would need far more.
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let x = ferrograd::Tensor::<f32>::scalar(1.0).with_grad();
            let mut y = x.clone();
            for _ in 0..200_000 {
                y = y.neg();
            }
            drop(y);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn absurd_thread_lists_are_usage_errors() {
    for list in ["1000000000", "0", &vec!["1"; 17].join(","), "1,x"] {
        let o = run_within(
            bin().args(["analyze", "scaling", "--threads-list", list]),
            30,
        );
        assert_eq!(o.status.code(), Some(2), "{list}");
    }
}

// ─── 5–6. Pairings and forged checkpoints ────────────────────────────────────────────────────

#[test]
fn models_that_do_not_fit_the_dataset_are_refused_naming_both() {
    let dir = temp_dir("pairing");
    // 64 inputs (8×8 like digits) but 3 outputs: digits has 10 classes.
    let mut m = small_model();
    m.architecture = vec![64, 3, 3];
    m.input_shape = vec![8, 8];
    m.classes = vec!["a".into(), "b".into(), "c".into()];
    m.layers[0].weight_shape = vec![64, 3];
    m.layers[0].weight = vec![0.1; 192];
    m.layers[1].weight_shape = vec![3, 3];
    m.layers[1].weight = vec![0.1; 9];
    m.layers[1].bias = vec![0.0; 3];
    let path = dir.join("three.msgpack");
    std::fs::write(&path, m.to_bytes().unwrap()).unwrap();
    for cmd in [
        &["predict"][..],
        &["analyze", "hessian", "--samples", "10"][..],
    ] {
        let o = run_within(
            bin()
                .args(cmd)
                .arg("--model")
                .arg(&path)
                .arg("--out")
                .arg(dir.join("out")),
            60,
        );
        let e = one_line_error(&o);
        assert!(
            e.contains("3 classes") && e.contains("digits has 10"),
            "{e}"
        );
    }
}

#[test]
fn datasets_that_cannot_train_are_refused_in_one_line() {
    let out = temp_dir("datasets-out");
    let cases: [(&str, PathBuf, &[&str], &str); 4] = [
        (
            "sizes",
            idx_folder("sizes", 20, 10, 28, 32),
            &[],
            "test images 32×32",
        ),
        (
            "empty",
            idx_folder("empty", 0, 10, 28, 28),
            &[],
            "training set is empty",
        ),
        (
            "no-test",
            idx_folder("no-test", 20, 0, 28, 28),
            &[],
            "test set is empty",
        ),
        (
            "val",
            idx_folder("val", 1, 10, 28, 28),
            &["--val-fraction", "0.9"],
            "leaves no training",
        ),
    ];
    for (name, dir, extra, expected) in cases {
        let o = run_within(
            bin()
                .args(["train", "--dataset", "mnist", "--epochs", "1", "--data-dir"])
                .arg(&dir)
                .arg("--out")
                .arg(&out)
                .args(extra),
            60,
        );
        let e = one_line_error(&o);
        assert!(e.contains(expected), "{name}: {e}");
    }
}

/// A digits run with `args`, its checkpoint read back; with the folder and the path.
fn checkpointed_run(name: &str, args: &[&str]) -> (PathBuf, PathBuf, Checkpoint) {
    let out = temp_dir(name);
    let o = run_within(&mut train_cmd(&out, args), 120);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path = out.join("checkpoints/checkpoint_relu_digits.msgpack");
    let c = Checkpoint::load(&path).unwrap();
    (out, path, c)
}

#[test]
fn forged_checkpoints_are_refused_naming_the_field() {
    let args = ["--epochs", "2", "--hidden", "8", "--optimizer", "adam"];
    let (out, path, good) = checkpointed_run("forged", &args);
    type Forge = fn(&mut Checkpoint);
    let forgeries: [(Forge, &str); 11] = [
        (|c| c.history[0].train_loss = f64::NAN, "history's epoch 1"),
        (|c| c.epochs_done = 1_000_000_000_000, "epochs done"),
        (|c| c.epochs_done = 1, "history"),
        (|c| c.config.epochs = 1_000_000_000_000, "epochs must be"),
        (|c| c.history[1].epoch = 7, "history"),
        (|c| c.train_seconds = f64::NAN, "not a duration"),
        (|c| c.config.hidden = vec![9], "its settings say"),
        (|c| c.model.activation = "tanh".into(), "its settings say"),
        (
            |c| {
                c.optimizer_state.pop();
            },
            "optimizer buffers",
        ),
        (|c| c.optimizer_steps = 1_000_000_000_000, "step counter"),
        (|c| c.config.hidden = vec![1; 100_000], "--hidden"),
    ];
    for (forge, expected) in forgeries {
        let mut c = good.clone();
        forge(&mut c);
        c.save(&path).unwrap();
        let o = run_within(
            &mut train_cmd(&out, &[&args[..], &["--resume"]].concat()),
            30,
        );
        let e = one_line_error(&o);
        assert!(
            e.contains(expected) && e.contains("checkpoint_relu_digits"),
            "{expected}: {e}"
        );
    }
}

#[test]
fn resuming_does_not_depend_on_how_out_is_spelled_and_names_what_differs() {
    let (out, path, good) = checkpointed_run("spelling", &["--epochs", "3", "--hidden", "8"]);
    let mut c = good.clone();
    // As if written after the first epoch: its counters say one epoch too.
    c.optimizer_steps /= 3;
    c.epochs_done = 1;
    c.history.truncate(1);
    c.save(&path).unwrap();
    let parent = out.parent().unwrap();
    let relative = Path::new(".").join(out.file_name().unwrap());
    let o = run_within(
        train_cmd(&relative, &["--epochs", "3", "--hidden", "8", "--resume"]).current_dir(parent),
        120,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("resuming after epoch 1"));
    let e = one_line_error(&run_within(
        &mut train_cmd(
            &out,
            &[
                "--epochs", "3", "--hidden", "8", "--lr", "0.1", "--seed", "1", "--resume",
            ],
        ),
        30,
    ));
    assert!(
        e.contains("lr: checkpoint 0.05, this run 0.1")
            && e.contains("seed: checkpoint 42, this run 1"),
        "{e}"
    );
}

// ─── 7. Two runs, one folder; kills at random moments ────────────────────────────────────────

/// Wide enough that an epoch of digits takes a few hundred milliseconds: time to act.
const SLOW: [&str; 4] = ["--epochs", "6", "--hidden", "1024,1024"];

#[test]
fn a_second_run_on_the_same_folder_is_refused_naming_the_first() {
    let out = temp_dir("concurrent");
    let mut first = train_cmd(&out, &SLOW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = out.join(ferrograd::lock::LOCK_FILE);
    let start = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.is_empty()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the first run never locked"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for second in [&["train"][..], &["compare"][..]] {
        let mut c = bin();
        c.args(second)
            .args(["--dataset", "digits", "--epochs", "1", "--out"])
            .arg(&out);
        let e = one_line_error(&run_within(&mut c, 30));
        assert!(e.contains(&format!("pid {}", first.id())), "{e}");
    }
    let status = first.wait().unwrap();
    assert!(status.success());
    // After the first run, the folder is free again.
    let o = run_within(
        &mut train_cmd(&out, &["--epochs", "1", "--hidden", "8"]),
        60,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// What [`kill_at_random_moments`] saw.
struct KillReport {
    /// Milliseconds after the start of each attempt.
    moments: Vec<u64>,
    /// Runs killed while still running.
    interrupted: usize,
    /// Runs that finished before their moment came (each compared with the reference).
    completed: usize,
}

/// Runs `args` again and again (resuming from the checkpoint when there is one), killing each
/// run at a random moment within an uninterrupted run's length. After every kill each file
/// left parses, and once a run had taken the lock no temporary file of an earlier run is left;
/// every run that completes, and a last one, must give the reference model bit for bit.
fn kill_at_random_moments(name: &str, args: &[&str], kills: usize, seed: u64) -> KillReport {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let reference = temp_dir(&format!("{name}-reference"));
    let start = Instant::now();
    let o = run_within(bin().args(args).arg("--out").arg(&reference), 1800);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let window_ms = start.elapsed().as_millis() as u64 + 1;
    let out = temp_dir(name);
    let same_model = |out: &Path| {
        for e in std::fs::read_dir(reference.join("models"))
            .unwrap()
            .flatten()
        {
            let theirs = std::fs::read(out.join("models").join(e.file_name())).unwrap();
            assert!(
                std::fs::read(e.path()).unwrap() == theirs,
                "the model differs from an uninterrupted run's"
            );
        }
    };
    let spawn = || {
        let mut cmd = bin();
        cmd.args(args)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if out
            .join("checkpoints")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
        {
            cmd.arg("--resume");
        }
        cmd.spawn().unwrap()
    };
    let mut report = KillReport {
        moments: Vec::new(),
        interrupted: 0,
        completed: 0,
    };
    for _ in 0..kills {
        let mut child = spawn();
        let ms = rng.random_range(0..window_ms);
        report.moments.push(ms);
        std::thread::sleep(Duration::from_millis(ms));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            same_model(&out);
            report.completed += 1;
            // Start the next attempt afresh, over this run's files.
            std::fs::remove_dir_all(out.join("checkpoints")).unwrap();
        } else {
            child.kill().unwrap();
            child.wait().unwrap();
            report.interrupted += 1;
        }
        let locked = std::fs::read_to_string(out.join(ferrograd::lock::LOCK_FILE))
            .is_ok_and(|s| s == child.id().to_string());
        every_file_parses_leaving_temps_of(&out, locked.then_some(child.id()));
    }
    // A last run completes whatever is left; then no temporary file may remain anywhere.
    assert!(spawn().wait().unwrap().success());
    same_model(&out);
    assert!(every_file_parses(&out) > 0);
    report
}

/// Every file in `dir` parses (the lock file aside); temporary files are allowed only when
/// `only_of` is `None` (no run has cleaned up yet) or they belong to that pid (the run just
/// killed). Returns how many files there are besides temporary ones.
fn every_file_parses_leaving_temps_of(dir: &Path, only_of: Option<u32>) -> usize {
    let mut n = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                if !name.contains(".ferrograd-tmp-") {
                    pending.push(p);
                }
            } else if name.contains(".ferrograd-tmp-") {
                if let Some(pid) = only_of {
                    assert!(
                        name.contains(&format!(".ferrograd-tmp-{pid}-")),
                        "stale temporary file {}",
                        p.display()
                    );
                }
            } else if name.starts_with("checkpoint_") {
                Checkpoint::load(&p).unwrap();
            } else if name.ends_with(".msgpack") {
                ModelFile::load(&p).unwrap();
            } else if name.ends_with(".json") {
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(&p).unwrap()).unwrap();
            } else if name.ends_with(".png") {
                image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            } else {
                assert_eq!(
                    name,
                    ferrograd::lock::LOCK_FILE,
                    "unexpected file {}",
                    p.display()
                );
            }
            n += usize::from(!name.contains(".ferrograd-tmp-"));
        }
    }
    n
}

#[test]
fn kills_at_random_moments_leave_files_that_parse_and_resume_to_the_same_bits() {
    let args = [
        "--threads",
        "1",
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "4",
        "--hidden",
        "512,512",
    ];
    let r = kill_at_random_moments("kills", &args, 6, 12);
    assert_eq!(r.interrupted + r.completed, 6);
}

/// The evidence: 50 SIGKILLs of a real 3-epoch MNIST run. Needs the MNIST files:
/// `FERROGRAD_MNIST_DIR=/path/to/mnist cargo test --release --test adversarial -- --ignored --nocapture`.
#[test]
#[ignore = "slow: 50 kills of a real MNIST run, several minutes"]
fn fifty_kills_of_a_real_mnist_run() {
    let dir = std::env::var("FERROGRAD_MNIST_DIR").expect("FERROGRAD_MNIST_DIR");
    let args = [
        "--threads",
        "2",
        "train",
        "--dataset",
        "mnist",
        "--epochs",
        "3",
        "--data-dir",
        &dir,
    ];
    let start = Instant::now();
    let r = kill_at_random_moments("mnist-kills", &args, 50, 50);
    println!(
        "50 attempts, killed at {:?} ms: {} runs interrupted, {} completed before their moment (each bit-identical); every artifact parsed, no stale temporary file; {:.0} s",
        r.moments,
        r.interrupted,
        r.completed,
        start.elapsed().as_secs_f64()
    );
}

/// Links planted while a run is going — where its artifact folders will be made, or in place
/// of a folder it already writes into — are never followed: the run writes into the folder
/// it opened, or fails in one line; the victim's file is untouched either way.
#[test]
fn links_planted_during_a_run_never_redirect_a_write() {
    for swap_checkpoints in [false, true] {
        planted_during_a_run(swap_checkpoints);
    }
}

fn planted_during_a_run(swap_checkpoints: bool) {
    let out = temp_dir(&format!("midrun-links-{swap_checkpoints}"));
    let victim = temp_dir(&format!("midrun-victim-{swap_checkpoints}"));
    let names = ["models", "results", "plots", "predicted_images"];
    for n in names {
        std::fs::write(victim.join(format!("{n}.bin")), b"PRECIOUS").unwrap();
    }
    let mut child = train_cmd(&out, &["--epochs", "60", "--hidden", "64"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, then plant links at every folder the run will write.
    let start = Instant::now();
    while !out.join("checkpoints").exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    for sub in names {
        std::os::unix::fs::symlink(&victim, out.join(sub)).unwrap();
    }
    if swap_checkpoints {
        // The folder it already writes checkpoints into becomes a link.
        std::fs::rename(out.join("checkpoints"), out.join("checkpoints_moved")).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("checkpoints")).unwrap();
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let victim_files: Vec<_> = std::fs::read_dir(&victim)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        victim_files.len(),
        names.len(),
        "files appeared in the victim: {victim_files:?}"
    );
    for n in names {
        assert_eq!(
            std::fs::read(victim.join(format!("{n}.bin"))).unwrap(),
            b"PRECIOUS"
        );
    }
    // The artifacts could not be written where links stand: the run says so in one line.
    assert!(!status.success());
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| !l.starts_with("data: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("link"), "{stderr}");
}

/// Under a small `ulimit -v` OpenBLAS's allocator waits for memory for ever at the first GEMM;
/// the OpenBLAS build refuses in one line instead, and the pure-Rust build just runs.
#[test]
fn a_small_address_space_limit_is_refused_or_survived_never_a_hang() {
    let out = temp_dir("small-ulimit");
    let o = run_within(
        with_memory_limit(&mut train_cmd(&out, &["--epochs", "1"]), 400 << 20),
        60,
    );
    if cfg!(feature = "openblas") {
        let e = one_line_error(&o);
        assert!(e.contains("ulimit -v"), "{e}");
    } else {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}
