//! Prints every event of a capture, one per line: `cargo run --example dump FILE`.

use l7rec_capture::{CaptureReader, Event};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: dump FILE")?;
    let mut r = CaptureReader::open(&path)?;
    while let Some(ev) = r.next_event() {
        match ev {
            Ok(Event::Packet(p)) => println!(
                "packet if={} ts={} len={}/{} dir={:?} process={:?} comment={:?}",
                p.interface_id,
                p.ts_ns,
                p.data.len(),
                p.orig_len,
                p.direction,
                p.process,
                p.comment
            ),
            Ok(Event::Records(recs)) => recs.iter().for_each(|r| println!("record {r:?}")),
            Ok(other) => println!("{other:?}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
