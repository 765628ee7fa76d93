//! The mixed membership run: every connection cycles its own users through
//! invite → join (room id) → join by alias → leave → leave → re-join → leave,
//! each a written event. The same generator drives our server and the floor.

use super::client::{self, Conn, Target};
use super::server;
use super::setup::Plan;
use super::stats::{histogram, record, summary, Errors};
use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long and how wide one mixed run is.
#[derive(Clone, Copy)]
pub struct Shape {
    pub connections: usize,
    pub warmup: f64,
    pub duration: f64,
    pub max_ops: u64,
}

#[derive(Clone, Copy)]
enum Kind {
    Invite = 0,
    JoinById = 1,
    JoinByAlias = 2,
    Leave = 3,
}
const KIND_NAMES: [&str; 4] = ["invite", "join by room id", "join by alias", "leave"];

/// What one mixed run measured inside its window.
pub struct Outcome {
    pub ok: u64,
    pub window: f64,
    pub all: Histogram<u64>,
    by_kind: Vec<Histogram<u64>>,
    pub errors: Errors,
    /// CPU the server used from the window's start to its end.
    pub server_cpu: Option<Duration>,
    /// CPU this load generator used in the window.
    pub self_cpu: Option<Duration>,
}

impl Outcome {
    fn new(window: f64) -> Self {
        Outcome {
            ok: 0,
            window,
            all: histogram(),
            by_kind: (0..4).map(|_| histogram()).collect(),
            errors: Errors::default(),
            server_cpu: None,
            self_cpu: None,
        }
    }

    fn merge(&mut self, other: Outcome) -> Result<(), String> {
        self.all.add(&other.all).map_err(|e| e.to_string())?;
        for (a, b) in self.by_kind.iter_mut().zip(&other.by_kind) {
            a.add(b).map_err(|e| e.to_string())?;
        }
        self.ok += other.ok;
        self.errors.merge(other.errors);
        Ok(())
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.ok as f64 / self.window
    }

    /// A latency quantile of the successful operations, in µs.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        (!self.all.is_empty()).then(|| self.all.value_at_quantile(q))
    }

    /// Server CPU time in the window per successful operation, in µs.
    pub fn server_cpu_us_per_op(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.ok > 0).then(|| cpu.as_secs_f64() * 1e6 / self.ok as f64)
    }

    pub fn print(&self, server_name: &str) {
        let attempted = self.ok + self.errors.total();
        println!(
            "membership ops: {attempted} completed in the {} s window: {} ok (2xx), {} errors",
            self.window,
            self.ok,
            self.errors.total()
        );
        println!("throughput:     {:.0} ok ops/s", self.ops_per_sec());
        println!("latency (ok):   {}", summary(&self.all));
        for (name, h) in KIND_NAMES.iter().zip(&self.by_kind) {
            println!("  {name:<16}{:>8} ok  {}", h.len(), summary(h));
        }
        self.errors.print("");
        let cores = |cpu: Option<Duration>| match cpu {
            Some(c) => format!("{:.2} cores", c.as_secs_f64() / self.window),
            None => "n/a".into(),
        };
        let per_op = match self.server_cpu_us_per_op() {
            Some(us) => format!(" = {us:.0} µs per ok op"),
            None => String::new(),
        };
        println!(
            "CPU in the window: {server_name} {}{per_op}; load generator {} (of {} cores)",
            cores(self.server_cpu),
            cores(self.self_cpu),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
        // Other work on the machine skews a loopback benchmark: say how busy it was.
        println!("machine load at the end: {}", server::machine_load());
    }
}

/// Runs the mix against `target`; `live` counts every successful operation
/// as it completes, warm-up included (the soak report reads it).
pub async fn run(
    shape: Shape,
    target: &Target,
    plan: Arc<Plan>,
    pid: Option<u32>,
    live: Arc<AtomicU64>,
) -> Result<Outcome, String> {
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(shape.warmup);
    let measure_end = measure_start + Duration::from_secs_f64(shape.duration);
    let (done, workers_done) = tokio::sync::oneshot::channel();
    let cpu_probe = tokio::spawn(cpu_in_window(pid, measure_start, measure_end, workers_done));
    let started_ops = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..shape.connections {
        let worker = Worker {
            w,
            conns: shape.connections,
            plan: plan.clone(),
            measure_start,
            measure_end,
            max_ops: shape.max_ops,
            started_ops: started_ops.clone(),
            live: live.clone(),
        };
        let target = target.clone();
        tasks.push(tokio::spawn(async move { worker.run(&target).await }));
    }
    let mut total = Outcome::new(shape.duration);
    for t in tasks {
        total.merge(t.await.map_err(|e| format!("worker: {e}"))?)?;
    }
    // `--max-ops` can end the mix before the window does: the window, and the
    // CPU read in it, end with the last operation then.
    let ended = Instant::now();
    if ended < measure_end {
        total.window = ended.saturating_duration_since(measure_start).as_secs_f64();
    }
    let _ = done.send(());
    (total.server_cpu, total.self_cpu) = cpu_probe.await.map_err(|e| e.to_string())?;
    Ok(total)
}

/// CPU the server and this process used between `from` and `to`, or until
/// the workers are done if that comes first.
async fn cpu_in_window(
    pid: Option<u32>,
    from: Instant,
    to: Instant,
    workers_done: tokio::sync::oneshot::Receiver<()>,
) -> (Option<Duration>, Option<Duration>) {
    let read = || {
        let server = pid.and_then(|p| server::cpu_time(&p.to_string()));
        (server, server::cpu_time("self"))
    };
    tokio::time::sleep_until(from.into()).await;
    let (s0, g0) = read();
    tokio::select! {
        _ = tokio::time::sleep_until(to.into()) => {}
        _ = workers_done => {}
    }
    let (s1, g1) = read();
    let delta = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
    (delta(s0, s1), delta(g0, g1))
}

/// One connection's share of the mix.
struct Worker {
    w: usize,
    conns: usize,
    plan: Arc<Plan>,
    measure_start: Instant,
    measure_end: Instant,
    max_ops: u64,
    started_ops: Arc<AtomicU64>,
    live: Arc<AtomicU64>,
}

impl Worker {
    async fn run(self, target: &Target) -> Outcome {
        let plan = &self.plan;
        let mut conn = Conn::new(target);
        let mut st = Outcome::new(0.0);
        let mine: Vec<usize> = (self.w..plan.members.len()).step_by(self.conns).collect();
        let mut cycle = 0usize;
        'cycles: loop {
            let user = &plan.members[mine[cycle % mine.len()]];
            let private = &plan.private[(self.w + cycle) % plan.private.len()];
            let owner = &plan.owners[private.owner];
            let public = &plan.public[(self.w + cycle) % plan.public.len()];
            let ops: [(Kind, String, &str, serde_json::Value); 7] = [
                (
                    Kind::Invite,
                    client::invite_path(&private.id),
                    &owner.token,
                    json!({ "user_id": user.user_id }),
                ),
                (
                    Kind::JoinById,
                    client::join_room_path(&private.id),
                    &user.token,
                    json!({}),
                ),
                (
                    Kind::JoinByAlias,
                    client::join_alias_path(&public.alias),
                    &user.token,
                    json!({}),
                ),
                (Kind::Leave, client::leave_path(&private.id), &user.token, json!({})),
                (Kind::Leave, client::leave_path(&public.id), &user.token, json!({})),
                (
                    Kind::JoinById,
                    client::join_room_path(&public.id),
                    &user.token,
                    json!({}),
                ),
                (Kind::Leave, client::leave_path(&public.id), &user.token, json!({})),
            ];
            cycle += 1;
            for (kind, path, token, body) in ops {
                let now = Instant::now();
                if now >= self.measure_end || self.started_ops.fetch_add(1, Ordering::Relaxed) >= self.max_ops {
                    break 'cycles;
                }
                let (latency, result) = conn.timed(&path, token, &body).await;
                // Throughput counts operations that completed inside the window.
                let finished = now + latency;
                let measured = finished >= self.measure_start && finished <= self.measure_end;
                match result {
                    Ok(_) => {
                        self.live.fetch_add(1, Ordering::Relaxed);
                        if measured {
                            st.ok += 1;
                            record(&mut st.all, latency);
                            record(&mut st.by_kind[kind as usize], latency);
                        }
                    }
                    Err(failure) => {
                        if measured {
                            st.errors
                                .add(format!("{} {}", KIND_NAMES[kind as usize], failure.key()), || {
                                    failure.to_string()
                                });
                        }
                        // Put the user back outside both rooms (not counted), then go on.
                        for room in [&private.id, &public.id] {
                            let _ = conn.timed(&client::leave_path(room), &user.token, &json!({})).await;
                        }
                        continue 'cycles;
                    }
                }
            }
        }
        st
    }
}
