//! The question `train` and `compare` ask on a terminal when no `--dataset` is given: a
//! numbered menu, answered by number or name, asked again until the answer is one of them.

use crate::data::DatasetName;
use anyhow::{bail, Result};
use std::io::{BufRead, Write};

/// The dataset chosen by an empty answer.
pub const DEFAULT: DatasetName = DatasetName::Digits;

/// The dataset an answer names: its number in [`DatasetName::ALL`] (1-based) or its name; an
/// empty answer is [`DEFAULT`].
pub fn parse_choice(answer: &str) -> Option<DatasetName> {
    let answer = answer.trim();
    if answer.is_empty() {
        return Some(DEFAULT);
    }
    match answer.parse::<usize>() {
        Ok(i) => DatasetName::ALL.get(i.checked_sub(1)?).copied(),
        Err(_) => DatasetName::parse(answer),
    }
}

/// Lists the datasets on `output`, numbered in registry order, each with its description and
/// `status(d)` (found locally, will download...), and reads answers from `input` until one is
/// valid; the end of input is an error.
pub fn ask_dataset(
    input: &mut impl BufRead,
    output: &mut impl Write,
    status: impl Fn(DatasetName) -> String,
) -> Result<DatasetName> {
    let n = DatasetName::ALL.len();
    let default_number = DatasetName::ALL
        .iter()
        .position(|d| *d == DEFAULT)
        .map_or(1, |i| i + 1);
    writeln!(output, "Which dataset?")?;
    for (i, d) in DatasetName::ALL.iter().enumerate() {
        let spec = d.spec();
        writeln!(
            output,
            "  {}) {:<8} {} ({})",
            i + 1,
            spec.id,
            spec.description,
            status(*d)
        )?;
    }
    loop {
        write!(
            output,
            "number 1–{n} or name [{default_number} = {DEFAULT}]: "
        )?;
        output.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            bail!("no dataset chosen (end of input); pass --dataset");
        }
        if let Some(d) = parse_choice(&line) {
            return Ok(d);
        }
        let names: Vec<&str> = DatasetName::ALL.iter().map(|d| d.as_str()).collect();
        writeln!(
            output,
            "{:?} is not a choice: type a number from 1 to {n} or one of {}",
            line.trim(),
            names.join(", ")
        )?;
    }
}
