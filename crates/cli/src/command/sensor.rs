//! `mailtls sensor --interface IFACE`: the analysis of `mailtls import pcap`, live on an
//! interface (a mirror port) through libpcap, with a BPF filter for the mail ports. Records
//! are written as handshakes complete (source `sensor`); memory stays bounded however long it
//! runs (the connection table and per-connection buffers are capped, idle connections close);
//! packets the kernel or interface dropped are counted. Runs until `--for` has passed or
//! SIGINT/SIGTERM. With `--config` and `[metrics]`, serves Prometheus metrics.

use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use capture::{AnalysisConfig, Analyzer, CaptureStats, Packet};
use clap::Args;
use gateway::metrics::MetricsEndpoint;
use metrics::{counter, describe_counter, describe_gauge, gauge};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags};
use store::{SessionRecord, Source};

use crate::command::discovery::{DiscoveryTarget, RecordWriter};
use crate::command::import::SummaryArgs;

/// Longest wait for packets when none is waiting, so the deadline and signals are noticed.
const IDLE_WAIT_MS: u16 = 20;
/// Records are written at least this often.
const WRITE_EVERY: Duration = Duration::from_secs(1);
/// Batches of records waiting for the writer thread before the packet loop waits for it.
const WRITE_QUEUE: usize = 1024;
/// Bytes of each packet kept: enough for any ClientHello segment and its headers.
const SNAPLEN: i32 = 65535;
/// The kernel's buffer for packets not read yet.
const KERNEL_BUFFER_BYTES: i32 = 64 * 1024 * 1024;
/// Ports whose connections the filter lets through, besides `--tls-port`.
const MAIL_PORTS: [u16; 8] = [993, 995, 465, 143, 110, 25, 587, 2525];

/// Options of `mailtls sensor`.
#[derive(Debug, Args)]
pub struct SensorArgs {
    /// The interface to listen on, e.g. a mirror port; `lo` on a test machine.
    #[arg(long, short, value_name = "IFACE")]
    interface: String,
    /// Stop after this long (e.g. `30s`, `15m`, `2h`); without it, run until stopped.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    run_for: Option<Duration>,
    /// Plaintext ports to watch for STARTTLS and logins besides the mail ports, as PORT.
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    #[command(flatten)]
    target: DiscoveryTarget,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let count: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: write a number and s, m, h or d, e.g. 30s"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(count.saturating_mul(seconds)))
}

/// Runs `mailtls sensor`.
pub fn run(args: SensorArgs) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailtls sensor: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The BPF filter: TCP to or from any mail port.
fn bpf_filter(args: &SensorArgs) -> String {
    let mut ports: Vec<u16> = MAIL_PORTS.to_vec();
    ports.extend(args.target.tls_ports.iter().map(|(port, _)| *port));
    ports.extend(&args.ports);
    ports.sort_unstable();
    ports.dedup();
    let each: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
    format!("tcp and ({})", each.join(" or "))
}

fn run_inner(args: SensorArgs) -> Result<()> {
    let (mut store, metrics_bind) = args.target.open()?;
    // Bound before the capture opens, so a taken port stops the start.
    let metrics = metrics_bind
        .map(MetricsEndpoint::bind)
        .transpose()
        .map_err(|e| anyhow!("cannot start: {e}"))?;
    if metrics.is_some() {
        describe_series();
    }
    let mut capture = pcap::Capture::from_device(args.interface.as_str())
        .and_then(|c| {
            c.promisc(true)
                .snaplen(SNAPLEN)
                .buffer_size(KERNEL_BUFFER_BYTES)
                .immediate_mode(true)
                .open()
        })
        // Non-blocking: on Linux a read's timeout only starts with the first packet, so a
        // quiet interface would never let the deadline or a signal be noticed.
        .and_then(|c| c.setnonblock())
        .with_context(|| format!("cannot capture on {}", args.interface))?;
    let filter = bpf_filter(&args);
    capture
        .filter(&filter, true)
        .with_context(|| format!("cannot set the filter {filter:?}"))?;
    let link_type = u32::try_from(capture.get_datalink().0).unwrap_or(u32::MAX);

    let stop = Arc::new(AtomicBool::new(false));
    let _background = start_background(stop.clone(), metrics)?;
    let mut analysis = AnalysisConfig::new(Source::Sensor, "sensor");
    analysis
        .implicit_tls_ports
        .extend(args.target.tls_ports.iter().copied());
    let mut analyzer = Analyzer::new(analysis);
    let mut writer = RecordWriter::for_live_capture(&mut store);
    let started = Instant::now();
    let deadline = args.run_for.map(|d| started + d);
    let mut bytes = 0u64;
    let mut counted = CaptureStats::default();
    // Records are written by a thread of their own: a store write takes long enough for a
    // burst to overflow the kernel's buffer if packets waited for it.
    let (to_writer, records) = mpsc::sync_channel::<(Vec<SessionRecord>, bool)>(WRITE_QUEUE);
    let writer_ref = &mut writer;
    std::thread::scope(|scope| -> Result<()> {
        let writing = scope.spawn(move || -> Result<()> {
            for (batch, flush) in records {
                writer_ref.add(batch, flush)?;
            }
            Ok(())
        });
        let mut last_write = Instant::now();
        eprintln!("mailtls sensor: listening on {} ({filter})", args.interface);
        while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
            match capture.next_packet() {
                Ok(packet) => {
                    let header = packet.header;
                    let timestamp = UNIX_EPOCH
                        + Duration::from_secs(u64::try_from(header.ts.tv_sec).unwrap_or(0))
                        + Duration::from_micros(u64::try_from(header.ts.tv_usec).unwrap_or(0));
                    bytes += packet.data.len() as u64;
                    analyzer.packet(&Packet {
                        timestamp,
                        link_type,
                        data: packet.data,
                        offset: 0,
                    });
                }
                // Waiting on the descriptor rather than sleeping: a burst arriving during a
                // sleep could overflow the kernel's buffer (loopback packets are up to 64 KiB).
                Err(pcap::Error::TimeoutExpired) => {
                    let mut ready = [PollFd::new(capture.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut ready, IDLE_WAIT_MS) {
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => return Err(e).context("waiting for packets"),
                    }
                }
                Err(e) => return Err(e).context("reading packets"),
            }
            let flush = last_write.elapsed() >= WRITE_EVERY;
            let batch = analyzer.take_records();
            // A closed channel means the writer failed: its join below says why.
            if (flush || !batch.is_empty()) && to_writer.send((batch, flush)).is_err() {
                break;
            }
            if flush {
                last_write = Instant::now();
                publish(&mut counted, analyzer.stats(), analyzer.open_flows());
                if let Ok(stat) = capture.stats() {
                    gauge!(DROPPED_PACKETS).set(f64::from(stat.dropped));
                    gauge!(INTERFACE_DROPPED_PACKETS).set(f64::from(stat.if_dropped));
                }
            }
        }
        analyzer.finish();
        // The writer may be gone already; its join reports why.
        let _ = to_writer.send((analyzer.take_records(), true));
        drop(to_writer);
        writing
            .join()
            .map_err(|_| anyhow!("the session store's writer thread panicked"))?
    })?;
    publish(&mut counted, analyzer.stats(), analyzer.open_flows());
    let stat = capture
        .stats()
        .context("reading the capture's statistics")?;
    writer.note("packets received by the filter", stat.received.into());
    writer.note("packets dropped by the kernel", stat.dropped.into());
    writer.note("packets dropped by the interface", stat.if_dropped.into());
    writer.print_summary(analyzer.stats(), bytes, args.summary.json)
}

/// The gauges set from outside the counts.
const OPEN_CONNECTIONS: &str = "mailtls_sensor_open_connections";
const DROPPED_PACKETS: &str = "mailtls_sensor_dropped_packets";
const INTERFACE_DROPPED_PACKETS: &str = "mailtls_sensor_interface_dropped_packets";

/// The sensor's Prometheus series: name, help text, and whether it is a gauge. The counters
/// come first, in the order [`publish`] increments them.
const SERIES: [(&str, &str, bool); 10] = [
    (
        "mailtls_sensor_packets_total",
        "Frames read from the interface",
        false,
    ),
    (
        "mailtls_sensor_connections_total",
        "TCP connections followed",
        false,
    ),
    (
        "mailtls_sensor_mid_stream_connections_total",
        "Connections joined after their SYN",
        false,
    ),
    (
        "mailtls_sensor_handshakes_total",
        "ClientHellos found",
        false,
    ),
    (
        "mailtls_sensor_refused_handshakes_total",
        "Handshakes the server refused with an alert or by hanging up",
        false,
    ),
    (
        "mailtls_sensor_plaintext_logins_total",
        "Logins seen in the clear",
        false,
    ),
    (
        "mailtls_sensor_dropped_segments_total",
        "Segments dropped to keep within the per-connection bound",
        false,
    ),
    (OPEN_CONNECTIONS, "Connections followed right now", true),
    (
        DROPPED_PACKETS,
        "Packets the kernel dropped since the sensor started (libpcap)",
        true,
    ),
    (
        INTERFACE_DROPPED_PACKETS,
        "Packets the interface dropped since the sensor started (libpcap)",
        true,
    ),
];

fn describe_series() {
    for (name, help, is_gauge) in SERIES {
        if is_gauge {
            describe_gauge!(name, help);
        } else {
            describe_counter!(name, help);
        }
    }
}

/// Adds what `stats` counted since `counted` to the Prometheus counters.
fn publish(counted: &mut CaptureStats, stats: &CaptureStats, open_flows: usize) {
    let increments = [
        stats.packets - counted.packets,
        stats.flows - counted.flows,
        stats.mid_stream_flows - counted.mid_stream_flows,
        stats.handshakes - counted.handshakes,
        stats.refused_handshakes - counted.refused_handshakes,
        stats.plaintext_logins - counted.plaintext_logins,
        stats.dropped_segments - counted.dropped_segments,
    ];
    for ((name, _, _), increment) in SERIES.iter().zip(increments) {
        counter!(*name).increment(increment);
    }
    gauge!(OPEN_CONNECTIONS).set(open_flows as f64);
    *counted = stats.clone();
}

/// A thread with a small runtime that serves metrics (when asked) and turns SIGINT or
/// SIGTERM into `stop`.
fn start_background(
    stop: Arc<AtomicBool>,
    metrics: Option<MetricsEndpoint>,
) -> Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    std::thread::Builder::new()
        .name("sensor-background".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Some(endpoint) = metrics {
                    tokio::spawn(endpoint.serve());
                }
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(term) => term,
                        Err(_) => return,
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                stop.store(true, Ordering::Relaxed);
            })
        })
        .context("cannot start the sensor's background thread")
}
