//! Loaders on files written here in the exact formats, and the download path against a local
//! HTTP server on 127.0.0.1.

mod common;

use common::{bin, temp_dir};

use ferrograd::data::download::{download, Checksum};
use ferrograd::data::{self, cifar, idx, DatasetName};
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_idx_set(dir: &Path, prefix: &str, n: usize, gzipped: bool) {
    let pixels: Vec<u8> = (0..n * 28 * 28).map(|i| (i % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let images = idx::encode(&[n, 28, 28], &pixels);
    let labels = idx::encode(&[n], &labels);
    let (ext, images, labels) = if gzipped {
        (".gz", gz(&images), gz(&labels))
    } else {
        ("", images, labels)
    };
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), labels).unwrap();
}

#[test]
fn idx_files_gzipped_or_raw_load_with_pixels_scaled_to_unit_range() {
    for gzipped in [true, false] {
        let dir = temp_dir(&format!("idx-{gzipped}"));
        write_idx_set(&dir, "train", 12, gzipped);
        write_idx_set(&dir, "t10k", 5, gzipped);
        let (train, test) = data::load_dataset(DatasetName::Mnist, Some(&dir)).unwrap();
        assert_eq!((train.len(), test.len()), (12, 5));
        assert_eq!((train.height, train.width, train.dim()), (28, 28, 784));
        assert_eq!(train.labels[..4], [0, 1, 2, 3]);
        // Pixel i of the file is i % 256, scaled by 1/255.
        assert_eq!(train.features[[0, 255]], 1.0);
        assert_eq!(train.features[[0, 1]], 1.0 / 255.0);
        assert_eq!(train.features[[1, 0]], (784 % 256) as f32 / 255.0);
    }
}

#[test]
fn cifar_records_become_bt601_grayscale() {
    let dir = temp_dir("cifar");
    let folder = dir.join(cifar::FOLDER);
    std::fs::create_dir_all(&folder).unwrap();
    // Record k: label k % 10; pixel p has R = p % 256, G = 255 − p % 256, B = (3p) % 256.
    let record = |k: usize| {
        let mut px = Vec::with_capacity(3072);
        px.extend((0..1024).map(|p| (p % 256) as u8));
        px.extend((0..1024).map(|p| 255 - (p % 256) as u8));
        px.extend((0..1024).map(|p| ((3 * p + k) % 256) as u8));
        ((k % 10) as u8, px)
    };
    for (i, f) in cifar::TRAIN_FILES.iter().enumerate() {
        let recs: Vec<_> = (0..3).map(|j| record(i * 3 + j)).collect();
        std::fs::write(folder.join(f), cifar::encode(&recs)).unwrap();
    }
    std::fs::write(
        folder.join(cifar::TEST_FILE),
        cifar::encode(&[record(7), record(8)]),
    )
    .unwrap();
    let (train, test) = data::load_dataset(DatasetName::Cifar10, Some(&dir)).unwrap();
    assert_eq!((train.len(), test.len(), train.dim()), (15, 2, 1024));
    assert_eq!(train.labels[..4], [0, 1, 2, 3]);
    // Hand-computed: record 0, pixel 10: R = 10, G = 245, B = 30 →
    // (0.299·10 + 0.587·245 + 0.114·30) / 255 = 150.225 / 255.
    assert!((train.features[[0, 10]] - 150.225 / 255.0).abs() < 1e-6);
    // Record 7 (first test record), pixel 300: R = 44, G = 211, B = (900 + 7) % 256 = 139.
    let expected = (0.299 * 44.0 + 0.587 * 211.0 + 0.114 * 139.0) / 255.0;
    assert!((test.features[[0, 300]] - expected).abs() < 1e-6);
    assert_eq!(test.labels, vec![7, 8]);
}

fn tar_gz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Write the name bytes directly so that unsafe paths can be built for the test.
        let name = header.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, &data[..]).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn cifar_archive_is_unpacked_and_loaded() {
    let dir = temp_dir("cifar-tar");
    let rec = |l: u8| cifar::encode(&[(l, vec![l; 3072])]);
    let mut entries: Vec<(String, Vec<u8>)> = cifar::TRAIN_FILES
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("{}/{f}", cifar::FOLDER), rec(i as u8)))
        .collect();
    entries.push((format!("{}/{}", cifar::FOLDER, cifar::TEST_FILE), rec(9)));
    let refs: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(p, d)| (p.as_str(), d.clone()))
        .collect();
    let archive = dir.join("cifar-10-binary.tar.gz");
    std::fs::write(&archive, tar_gz(&refs)).unwrap();
    let dest = dir.join("out");
    cifar::unpack(&archive, &dest).unwrap();
    let (train, test) = data::load_cifar(
        &dest.join(cifar::FOLDER),
        255.0,
        &mut ferrograd::limits::DataBudget::new(1 << 30),
    )
    .unwrap();
    assert_eq!(train.labels, vec![0, 1, 2, 3, 4]);
    assert_eq!(test.labels, vec![9]);
    // A gray pixel (R = G = B = v) keeps its value: the luma weights sum to 1.
    assert!((train.features[[3, 0]] - 3.0 / 255.0).abs() < 1e-6);
}

#[test]
fn cifar_archive_entries_leaving_the_folder_are_refused() {
    for bad in [
        "../escape.bin",
        "/tmp/ferrograd-absolute.bin",
        "a/../../escape.bin",
    ] {
        let dir = temp_dir("cifar-evil");
        let archive = dir.join("evil.tar.gz");
        std::fs::write(&archive, tar_gz(&[(bad, b"x".to_vec())])).unwrap();
        let dest = dir.join("inside");
        let err = cifar::unpack(&archive, &dest).unwrap_err().to_string();
        assert!(err.contains("leaves the target folder"), "{bad}: {err}");
        assert!(!dir.join("escape.bin").exists());
        assert!(!Path::new("/tmp/ferrograd-absolute.bin").exists());
    }
}

#[test]
fn digits_are_embedded_with_a_fixed_split() {
    let (train, test) = data::load_digits().unwrap();
    assert_eq!((train.len(), test.len(), train.dim()), (1438, 359, 64));
    assert!(train.features.iter().all(|&v| (0.0..=1.0).contains(&v)));
    // The first row of the file is a 0; the fifth row (first test image) is a 4.
    assert_eq!(train.labels[0], 0);
    assert_eq!(test.labels[0], 4);
}

#[test]
fn validation_split_is_seeded_and_disjoint() {
    let (train, test) = data::load_digits().unwrap();
    let a = data::split_validation(train.clone(), test.clone(), 0.1, 7);
    let b = data::split_validation(train.clone(), test.clone(), 0.1, 7);
    let c = data::split_validation(train, test, 0.1, 8);
    assert_eq!(a.val.labels, b.val.labels);
    assert_eq!(a.val.features, b.val.features);
    assert_ne!(a.val.features, c.val.features);
    assert_eq!(a.train.len() + a.val.len(), 1438);
    assert_eq!(a.val.len(), 144);
}

/// A one-shot-per-connection HTTP server on 127.0.0.1 with canned answers by path.
fn serve(body: Vec<u8>, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut s = stream.unwrap();
            let mut req = [0u8; 2048];
            let n = s.read(&mut req).unwrap_or(0);
            let line = String::from_utf8_lossy(&req[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let reply: Vec<u8> = match path.as_str() {
                "/good" | "/bad" => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&body);
                    r
                }
                "/cut" => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&body[..body.len() / 2]);
                    r
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = s.write_all(&reply);
            let _ = s.flush();
        }
    });
    format!("http://{addr}")
}

#[test]
fn downloads_verify_checksums_and_leave_nothing_behind_on_failure() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(&body);
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let sha: &'static str = Box::leak(sha.into_boxed_str());
    let base = serve(body.clone(), 4);
    let dir = temp_dir("download");
    let listing = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    // A good file arrives whole, under its final name only.
    let good = dir.join("good.bin");
    download(&format!("{base}/good"), &good, &Checksum::Sha256(sha)).unwrap();
    assert_eq!(std::fs::read(&good).unwrap(), body);
    assert_eq!(listing(&dir), vec!["good.bin"]);

    // A checksum mismatch is an error naming both digests; nothing is left.
    let bad = dir.join("bad.bin");
    let wrong = "0".repeat(64);
    let wrong: &'static str = Box::leak(wrong.into_boxed_str());
    let e = download(&format!("{base}/bad"), &bad, &Checksum::Sha256(wrong)).unwrap_err();
    assert!(e.to_string().contains("sha256 mismatch"), "{e}");
    assert!(e.to_string().contains(sha), "{e}");

    // A 404 is an error; nothing is left.
    let e = download(
        &format!("{base}/missing"),
        &dir.join("missing.bin"),
        &Checksum::Sha256(sha),
    )
    .unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");

    // A connection cut halfway is an error; nothing is left.
    let e = download(
        &format!("{base}/cut"),
        &dir.join("cut.bin"),
        &Checksum::Sha256(sha),
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("connection") || msg.contains("closed"),
        "{msg}"
    );

    assert_eq!(
        listing(&dir),
        vec!["good.bin"],
        "a failed download left a file behind"
    );
}

#[test]
fn a_missing_dataset_offline_gives_one_line_naming_the_files_and_folders() {
    // MNIST is looked for in data/mnist/ of the working folder (empty here) and in
    // /usr/share/datasets/mnist/ (never installed); CIFAR-10 is not on these machines at all.
    for (dataset, file, folder) in [
        ("mnist", "train-images-idx3-ubyte.gz", "data/mnist"),
        ("cifar10", "cifar-10-binary.tar.gz", "data/cifar10"),
    ] {
        let dir = temp_dir(&format!("offline-{dataset}"));
        // Point downloads at a closed port so nothing leaves the machine.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let out = bin()
            .args(["train", "--dataset", dataset, "--epochs", "1"])
            .env(data::MIRROR_VAR, format!("http://127.0.0.1:{port}"))
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        let line = lines[0];
        for needle in [file, folder, "--data-dir", "download failed"] {
            assert!(line.contains(needle), "{needle} missing from: {line}");
        }
        assert!(!err.contains("panicked"), "{err}");
        let leftovers: Vec<_> = walk(&dir);
        assert!(
            leftovers
                .iter()
                .all(|p| !p.to_string_lossy().ends_with(".part")),
            "{leftovers:?}"
        );
    }
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A server that streams without end (no Content-Length) is cut off at the download limit,
/// and one that announces more than the limit is refused before a byte is written; nothing
/// is left either way.
#[test]
fn endless_or_oversized_downloads_are_cut_off_and_leave_nothing() {
    use ferrograd::limits::MAX_DOWNLOAD_BYTES;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut s = stream.unwrap();
            let mut req = [0u8; 2048];
            let n = s.read(&mut req).unwrap_or(0);
            let line = String::from_utf8_lossy(&req[..n]).to_string();
            if line.contains("/huge") {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    MAX_DOWNLOAD_BYTES * 4
                );
                let _ = s.write_all(head.as_bytes());
                continue;
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            // Zeros until the client hangs up, bounded so the thread always ends.
            let chunk = vec![0u8; 1 << 16];
            let mut sent = 0u64;
            while sent < 2 * MAX_DOWNLOAD_BYTES && s.write_all(&chunk).is_ok() {
                sent += chunk.len() as u64;
            }
        }
    });
    let dir = temp_dir("endless");
    let sha: &'static str = Box::leak("0".repeat(64).into_boxed_str());
    for path in ["endless", "huge"] {
        let dest = dir.join(format!("{path}.bin"));
        let e = download(
            &format!("http://{addr}/{path}"),
            &dest,
            &Checksum::Sha256(sha),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("more than"), "{path}: {e}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "{path}: left files"
        );
    }
}

/// A dataset whose every pixel names its row and column, so a wrong or stale row shows.
fn numbered_rows(n: usize, cols: usize) -> data::Dataset {
    data::Dataset {
        name: DatasetName::Digits,
        features: ndarray::Array2::from_shape_fn((n, cols), |(i, j)| (i * 1000 + j) as f32),
        labels: (0..n).map(|i| i % 10).collect(),
        height: 1,
        width: cols,
        classes: (0..10).map(|c| c.to_string()).collect(),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// The loader thread (and the gather in turn without it) hands over exactly the rows a
    /// synchronous gather copies, batch after batch in order (repeated rows, batches of one,
    /// batches of other lengths; each batch's buffer goes back to the pool, as a training
    /// step's does, so later batches land on buffers holding stale rows), and an error from
    /// the step stops the walk there.
    #[test]
    fn prefetched_batches_are_the_rows_asked_for_in_order_and_an_error_stops_them(
        n in 1usize..60,
        cols in 1usize..1100,
        batches in proptest::collection::vec(proptest::collection::vec(0usize..1000, 1..20), 0..12),
        fail_at in proptest::option::of(0usize..12),
        loader: bool,
    ) {
        let d = numbered_rows(n, cols);
        let batches: Vec<Vec<usize>> =
            batches.into_iter().map(|b| b.into_iter().map(|i| i % n).collect()).collect();
        let mut seen = Vec::new();
        let result = data::for_each_batch_on(&d, &batches, loader, |b, x, waited| {
            let mut expect = ndarray::Array2::zeros((batches[b].len(), cols));
            data::gather_rows(&d.features, &batches[b], &mut expect);
            assert_eq!(x, expect, "batch {b}");
            assert!(waited >= 0.0);
            drop(ferrograd::Tensor::from_array(x));
            seen.push(b);
            if fail_at == Some(b) { Err(b) } else { Ok(()) }
        });
        let stop = fail_at.filter(|&k| k < batches.len());
        match stop {
            Some(k) => {
                proptest::prop_assert_eq!(result, Err(k));
                proptest::prop_assert_eq!(seen, (0..=k).collect::<Vec<_>>());
            }
            None => {
                proptest::prop_assert_eq!(result, Ok(()));
                proptest::prop_assert_eq!(seen, (0..batches.len()).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn a_row_out_of_range_panics_in_the_caller_instead_of_hanging() {
    let d = numbered_rows(5, 3);
    let batches = vec![vec![0, 1], vec![2, 7]];
    let mut calls = 0;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        data::for_each_batch_on(&d, &batches, true, |_, _, _| {
            calls += 1;
            Ok::<(), ()>(())
        })
    }));
    let message = caught.expect_err("an index out of range must panic");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        text.contains("out of bounds") || text.contains("index"),
        "{text}"
    );
    assert_eq!(calls, 1, "the first batch trains, the second never arrives");
}

/// Two code paths for the same training: `Trainer::step_on` (gathers in the step) and
/// `Trainer::steps` (a loader thread gathers ahead) must leave bit-identical weights.
#[test]
fn training_with_the_loader_thread_gives_the_same_weights_as_gathering_in_the_step() {
    use ferrograd::nn::{Activation, Init, Mlp, Module};
    use ferrograd::optim::Sgd;
    use ferrograd::train::Trainer;
    use rand::SeedableRng;
    let (train, _) = data::load_digits().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let sizes = [train.dim(), 32, 16, train.classes.len()];
    let make = || {
        Trainer::new(
            Mlp::<f32>::new(&sizes, Activation::Relu, Init::Xavier, 9),
            Box::new(Sgd::new(0.9)),
            0.05,
        )
    };
    let (mut a, mut b) = (make(), make());
    for epoch in 0..3 {
        let batches = data::shuffled_batches(train.len(), 24 + 7 * epoch, &mut rng);
        let mut expected = Vec::new();
        for idx in &batches {
            expected.push(a.step_on(&train, idx).expect("a finite step").loss);
        }
        let mut losses = Vec::new();
        b.steps(&train, &batches, |_, _, o| {
            losses.push(o.map_err(|d| format!("{d:?}"))?.loss);
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(losses, expected, "epoch {epoch}");
    }
    for (p, q) in a.model.parameters().iter().zip(b.model.parameters()) {
        let (p, q) = (p.to_vec(), q.to_vec());
        assert!(p.iter().zip(&q).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}
