//! `ddlens distill`: maps its flags onto the library's [`DistillJob`], runs it with a progress
//! bar and writes the set, its picture and its log. A flag the method does not use is an error
//! naming it; every default lives in the job.

use std::path::PathBuf;

use clap::Args;
use ddlens::distill::{DistillJob, ExpertJob, Field, MethodKind};
use ddlens::{Error, Result};

use crate::args::{open_model_and_data, DataArgs};
use crate::bar::Bar;

#[derive(Args)]
#[command(
    after_help = "Iteration budgets (protocols.md): DM runs 20,000 iterations at the reference's full \
budget; the CLI default is 1,000 to keep a first run short. DC and DSA: 1,000 iterations. MTT: 5,000 \
iterations of N = 20 student steps matching M = 2 expert epochs (image lr 1000, lr-of-lr 1e-5). \
BPTT: 1,000 iterations of 100 unrolled steps (RaT-BPTT with --window M). random and herding do not \
iterate.\n\
MTT needs expert trajectories: --experts DIR reuses those of `ddlens experts`; without it they are \
generated first (--num-experts, --expert-epochs) into DIR/experts, and reused from there when \
they match.\n\
Resume an interrupted run with the same command plus --resume: the result is bit-identical to an \
uninterrupted run on CPU."
)]
/// Options of `ddlens distill`.
pub(crate) struct DistillArgs {
    /// Method: random, herding, dm, dc, dsa, mtt or bptt.
    #[arg(long)]
    pub method: String,
    /// Images per class.
    #[arg(long, default_value_t = 10)]
    pub ipc: usize,
    #[command(flatten)]
    pub data: DataArgs,
    /// Iterations (default: 1,000 for dm, whose full budget is 20,000; 1,000 for dc, dsa and
    /// bptt; 5,000 for mtt; none for random/herding).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Seed of the initial set, of every iteration's draws and of herding's feature model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image learning rate (dm: 1.0, dc/dsa: 0.1, mtt: 1000, bptt: 100).
    #[arg(long, visible_alias = "lr-img")]
    pub lr: Option<f32>,
    /// Image momentum (every method: 0.5).
    #[arg(long)]
    pub momentum: Option<f32>,
    /// Real images per class per iteration (dm, dc, dsa), or in bptt's outer loss batch (256).
    #[arg(long)]
    pub batch_real: Option<usize>,
    /// No differentiable siamese augmentation in dm and mtt (default: the standard DSA
    /// strategy; without flip on MNIST). dsa always augments; dc and bptt never do.
    #[arg(long)]
    pub no_dsa: bool,
    /// Inner steps: mtt's student steps N (20), bptt's unrolled training steps (100).
    #[arg(long)]
    pub syn_steps: Option<usize>,
    /// Synthetic minibatch of mtt's student / bptt's inner training (default: the whole set).
    #[arg(long)]
    pub batch_syn: Option<usize>,
    /// Learning rate of the learned lr (mtt, bptt with --learn-lr; 1e-5).
    #[arg(long)]
    pub lr_lr: Option<f32>,
    /// mtt: expert trajectories written by `ddlens experts` (default: generate them into
    /// DIR/experts first).
    #[arg(long, value_name = "EXPERTS_DIR")]
    pub experts: Option<PathBuf>,
    /// mtt: experts to generate when --experts is not given.
    #[arg(long, default_value_t = 10)]
    pub num_experts: usize,
    /// mtt: epochs per generated expert (reference 50).
    #[arg(long, default_value_t = 50)]
    pub expert_epochs: usize,
    /// mtt: expert epochs M between the student's start and its target (2).
    #[arg(long)]
    pub expert_epochs_ahead: Option<usize>,
    /// mtt: start epochs are drawn from 0..this, clamped so that the target exists (20).
    #[arg(long)]
    pub max_start_epoch: Option<usize>,
    /// bptt: RaT-BPTT, differentiating only the last M steps of a randomly long unroll.
    #[arg(long, value_name = "M")]
    pub window: Option<usize>,
    /// bptt: learn the inner lr too (stored in the set, used by `ddlens eval`).
    #[arg(long)]
    pub learn_lr: bool,
    /// herding: features from these parameters (safetensors from `ddlens train`) instead of
    /// training a model for one epoch of P_real.
    #[arg(long, value_name = "FILE")]
    pub params: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "ddlens-out/distill")]
    pub out: PathBuf,
    /// Write the checkpoint DIR/<method>-ipc<k>.ckpt every this many iterations (and at the end).
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Continue from the checkpoint of an earlier run with the same settings.
    #[arg(long)]
    pub resume: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The job the flags describe: each flag given is checked against the method, then set.
fn job_from(args: &DistillArgs) -> Result<DistillJob> {
    let method: MethodKind = args.method.parse()?;
    let mut job = DistillJob::new(method, args.ipc)?;
    job.seed = args.seed;
    let set = |given: bool, field: Field| -> Result<bool> {
        if given {
            job.check_applies(field)?;
        }
        Ok(given)
    };
    let iterations = set(args.iterations.is_some(), Field::Iterations)?;
    let lr = set(args.lr.is_some(), Field::LrImg)?;
    let momentum = set(args.momentum.is_some(), Field::Momentum)?;
    let batch_real = set(args.batch_real.is_some(), Field::BatchReal)?;
    let no_dsa = set(args.no_dsa, Field::Dsa)?;
    let syn_steps = set(args.syn_steps.is_some(), Field::SynSteps)?;
    let batch_syn = set(args.batch_syn.is_some(), Field::BatchSyn)?;
    let lr_lr = set(args.lr_lr.is_some(), Field::LrLr)?;
    let experts = set(args.experts.is_some(), Field::Experts)?;
    let ahead = set(args.expert_epochs_ahead.is_some(), Field::ExpertEpochsAhead)?;
    let max_start = set(args.max_start_epoch.is_some(), Field::MaxStartEpoch)?;
    let window = set(args.window.is_some(), Field::Window)?;
    let learn_lr = set(args.learn_lr, Field::LearnLr)?;
    let params = set(args.params.is_some(), Field::HerdingParams)?;
    set(args.resume, Field::Resume)?;
    if iterations {
        job.iterations = args.iterations;
    }
    if lr {
        job.lr_img = args.lr;
    }
    if momentum {
        job.momentum = args.momentum;
    }
    if batch_real {
        job.batch_real = args.batch_real.unwrap_or(job.batch_real);
    }
    if no_dsa {
        job.dsa = false;
    }
    if syn_steps {
        job.syn_steps = args.syn_steps;
    }
    if batch_syn {
        job.batch_syn = args.batch_syn;
    }
    if lr_lr {
        job.lr_lr = args.lr_lr.unwrap_or(job.lr_lr);
    }
    if experts {
        job.experts = args.experts.clone();
    }
    if ahead {
        job.expert_epochs_ahead = args.expert_epochs_ahead.unwrap_or(job.expert_epochs_ahead);
    }
    if max_start {
        job.max_start_epoch = args.max_start_epoch.unwrap_or(job.max_start_epoch);
    }
    if window {
        job.window = args.window;
    }
    if learn_lr {
        job.learn_lr = true;
    }
    if params {
        job.herding_params = args.params.clone();
    }
    if method.is_iterative() {
        let stem = format!("{method}-ipc{}", args.ipc);
        job.checkpoint = Some(args.out.join(format!("{stem}.ckpt")));
        job.checkpoint_every = args.checkpoint_every;
        job.resume = args.resume;
    }
    job.validate()?;
    Ok(job)
}

/// Distils, writes OUT/<method>-ipc<k>.{safetensors,png,json} and reports.
pub(crate) fn run(args: DistillArgs) -> Result<()> {
    let mut job = job_from(&args)?;
    let (bundle, splits) = open_model_and_data(&args.data)?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    if job.method == MethodKind::Mtt && job.experts.is_none() {
        job.experts = Some(experts_for(&args, &bundle, &splits.train)?);
    }
    let mut bar = Bar::new(job.method.name(), job.iterations() as u64);
    let outcome = job.run(&bundle, &splits.train, &mut bar)?;
    bar.finish();
    let stem = format!("{}-ipc{}", job.method, job.ipc);
    let files = outcome.write(&args.out, &stem)?;
    if args.json {
        println!("{}", outcome.log_json(&files));
    } else {
        let loss = outcome
            .log
            .as_ref()
            .and_then(|l| l.losses.last())
            .map_or(String::new(), |l| format!(", final loss {l:.4}"));
        println!(
            "{}: {} images ({} per class) for {} in {:.1} s{loss}\nwrote {}, {} and {}",
            job.method,
            outcome.syn.len(),
            job.ipc,
            bundle.name(),
            outcome.seconds,
            files.set.display(),
            files.png.display(),
            files.log.display()
        );
    }
    Ok(())
}

/// MTT without `--experts`: those generated earlier into `<out>/experts` with the same
/// settings, or freshly generated there.
fn experts_for(
    args: &DistillArgs,
    bundle: &ddlens::Bundle,
    real: &ddlens::Dataset,
) -> Result<PathBuf> {
    let dir = args.out.join("experts");
    let mut job = ExpertJob::new(
        args.num_experts,
        args.expert_epochs,
        !args.no_dsa,
        Some(args.data.dataset),
    );
    job.seed = args.seed;
    eprintln!(
        "experts: {} of {} epochs in {} (reused when they match; pass them with --experts)",
        args.num_experts,
        args.expert_epochs,
        dir.display()
    );
    let mut bar = Bar::new("experts", 0);
    job.open_or_generate(&dir, bundle, real, &mut bar)?;
    bar.finish();
    Ok(dir)
}
