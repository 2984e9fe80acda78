/* certval-load: the load generator of certval (gRPC C core, asynchronous).
 *
 *   certval-load --target HOST:PORT --fixtures DIR [--mix CLASS=W,...]
 *       [--batch B] [--channels M] [--concurrency N] [--threads T]
 *       [--api unary|stream] [--rate CALLS_PER_S] [--duration S] [--warmup S]
 *       [--users U] [--deadline S|--deadline-ms MS] [--json FILE] [--plot PREFIX]
 *       [--probe-revocation]
 *
 * Closed loop (default): N calls in flight over M channels, each channel its
 * own TCP connection. Open loop (--rate): calls leave at fixed intended
 * times and latency is measured from the intended time, so a server that
 * stalls cannot hide its queue (N bounds the calls in flight). The chains
 * come from DIR/chains.bundle (certval-fixtures), drawn by the mix weights.
 * Every verdict is checked against the class of its chain.
 *
 * Output: a human summary on stderr, one JSON document on stdout (or
 * --json FILE); with --plot, PREFIX-timeline.tsv, PREFIX-dist.tsv and, when
 * gnuplot is installed, PREFIX-latency-time.png and PREFIX-latency-dist.png.
 * --probe-revocation sends batches of the victim class and stops at the first
 * response whose chains are all DENY (the revocation scenario).
 * Exit 0 after a run, 1 when it could not run, 2 on usage errors. */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <grpc/grpc.h>

#include "load_internal.h"
#include "lt_args.h"

extern char **environ;

#define LD_EXTRA_MAX 512
#define LD_PATH_MAX 4096

struct ld_worker {
    pthread_t tid;
    struct ld_run *run;
    unsigned index;
    struct ld_thread_result res;
    int rc;
};

static void ld_usage(FILE *f)
{
    fprintf(f,
            "usage: certval-load --target HOST:PORT --fixtures DIR [--mix CLASS=W,...]\n"
            "         [--batch B] [--channels M] [--concurrency N] [--threads T]\n"
            "         [--api unary|stream] [--rate CALLS_PER_S] [--duration S] [--warmup S]\n"
            "         [--users U] [--deadline S|--deadline-ms MS] [--json FILE] [--plot PREFIX]\n"
            "         [--probe-revocation]\n"
            "classes: tenant device revoked expired untrusted malformed victim\n"
            "defaults: --mix tenant=90,device=10 --batch 64 --channels 2 --concurrency 8\n"
            "          --threads 1 --api unary --duration 10 --warmup 2 --users 1000\n"
            "          --deadline 30 (seconds; also 50ms, 1.5s; --deadline-ms 50)\n");
}

/* ld_parse_deadline reads "2" (seconds, as before), "1.5s" or "50ms" into
 * milliseconds, 1 ms to 1 hour. */
static bool ld_parse_deadline(const char *s, unsigned *out_ms)
{
    char *end;
    double v, ms;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s)
        return false;
    if (strcmp(end, "ms") == 0)
        ms = v;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        ms = v * 1000.0;
    else
        return false;
    if (!(ms >= 1 && ms <= 3600000.0))
        return false;
    *out_ms = (unsigned)(ms + 0.5);
    return true;
}

/* ld_parse_opt handles "--name value"; returns false on a bad option. */
static bool ld_parse_opt(struct ld_opts *o, const char *name, const char *val)
{
    const struct lt_str_opt strs[] = {
        {"--target", &o->target},  {"--fixtures", &o->fixtures}, {"--mix", &o->mix_text},
        {"--json", &o->json_path}, {"--plot", &o->plot_prefix},
    };
    bool ok;

    if (lt_arg_string(strs, sizeof(strs) / sizeof(strs[0]), name, val, &ok))
        return ok;
    if (val == NULL)
        return false;
    if (strcmp(name, "--api") == 0) {
        o->stream = strcmp(val, "stream") == 0;
        return o->stream || strcmp(val, "unary") == 0;
    }
    if (strcmp(name, "--batch") == 0)
        return lt_parse_uint(val, 1, LD_MAX_BATCH, &o->batch);
    if (strcmp(name, "--channels") == 0)
        return lt_parse_uint(val, 1, LD_MAX_CHANNELS, &o->channels);
    if (strcmp(name, "--concurrency") == 0)
        return lt_parse_uint(val, 1, LD_MAX_CONCURRENCY, &o->concurrency);
    if (strcmp(name, "--threads") == 0)
        return lt_parse_uint(val, 1, LD_MAX_THREADS, &o->threads);
    if (strcmp(name, "--users") == 0)
        return lt_parse_uint(val, 1, 100000000, &o->users);
    if (strcmp(name, "--deadline") == 0)
        return ld_parse_deadline(val, &o->deadline_ms);
    if (strcmp(name, "--deadline-ms") == 0)
        return lt_parse_uint(val, 1, 3600000, &o->deadline_ms);
    if (strcmp(name, "--rate") == 0)
        return (o->open_loop = lt_parse_double(val, 0.1, 1e8, &o->rate));
    if (strcmp(name, "--duration") == 0)
        return lt_parse_double(val, 0.1, LD_MAX_SECONDS, &o->duration_s);
    if (strcmp(name, "--warmup") == 0)
        return lt_parse_double(val, 0, LD_MAX_SECONDS, &o->warmup_s);
    return false;
}

/* ld_arg is certval-load's lt_arg_fn: --help (usage, exit 0), the
 * --probe-revocation flag, or an option with a value. */
static enum lt_arg ld_arg(void *ctx, const char *name, const char *val)
{
    if (strcmp(name, "--help") == 0) {
        ld_usage(stdout);
        exit(0);
    }
    if (strcmp(name, "--probe-revocation") == 0) {
        ((struct ld_opts *)ctx)->stop_on_all_deny = true;
        return LT_ARG_FLAG;
    }
    return ld_parse_opt(ctx, name, val) ? LT_ARG_WITH_VALUE : LT_ARG_BAD;
}

static int ld_parse_args(struct ld_opts *o, int argc, char **argv)
{
    char err[256];

    if (lt_args_parse("certval-load", argc, argv, ld_arg, o) != 0)
        return -1;
    if (o->target == NULL || o->fixtures == NULL) {
        fprintf(stderr, "certval-load: --target and --fixtures are required\n");
        return -1;
    }
    if (o->mix_text == NULL)
        o->mix_text = o->stop_on_all_deny ? "victim=1" : "tenant=90,device=10";
    if (lt_mix_parse(&o->mix, o->mix_text, err, sizeof(err)) != 0) {
        fprintf(stderr, "certval-load: %s\n", err);
        return -1;
    }
    if (o->channels > o->concurrency)
        o->channels = o->concurrency;
    if (o->threads > o->channels)
        o->threads = o->channels;
    return 0;
}

static void *ld_worker_main(void *arg)
{
    struct ld_worker *w = arg;

    w->rc = ld_client_run(w->run, w->index, &w->res);
    return NULL;
}

/* ---- timeline and plots ---- */

static int ld_write_tsv(const struct ld_opts *o, const struct ld_worker *w, const struct lt_hist *all)
{
    char path[LD_PATH_MAX];
    FILE *fp;
    size_t n = w[0].res.n_seconds;

    snprintf(path, sizeof(path), "%s-timeline.tsv", o->plot_prefix);
    fp = fopen(path, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "# second\tcalls\tchains\terrors\tp50_us\tp99_us\tmax_us\n");
    for (size_t i = 0; i < n; i++) {
        struct lt_hist h;
        uint64_t calls = 0, chains = 0, errs = 0;

        if (lt_hist_init(&h, LD_TIMELINE_SUB_BITS) != 0)
            break;
        for (unsigned k = 0; k < o->threads; k++) {
            calls += w[k].res.timeline[i].calls;
            chains += w[k].res.timeline[i].chains;
            errs += w[k].res.timeline[i].errors;
            lt_hist_merge(&h, &w[k].res.timeline[i].lat);
        }
        if (calls + errs > 0)
            fprintf(fp, "%zu\t%llu\t%llu\t%llu\t%.1f\t%.1f\t%.1f\n", i,
                    (unsigned long long)calls, (unsigned long long)chains,
                    (unsigned long long)errs, lt_hist_percentile(&h, 50) / 1000.0,
                    lt_hist_percentile(&h, 99) / 1000.0, h.total ? h.max / 1000.0 : 0.0);
        lt_hist_clear(&h);
    }
    fclose(fp);
    snprintf(path, sizeof(path), "%s-dist.tsv", o->plot_prefix);
    fp = fopen(path, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "# percentile\tlatency_us\t1/(1-p)\n");
    /* Percentiles spaced evenly in "number of nines", up to 99.999. */
    for (int k = 0; k <= 50; k++) {
        double nines = k / 10.0, p = 100.0 * (1.0 - 1.0 / __builtin_pow(10.0, nines));

        fprintf(fp, "%.4f\t%.1f\t%.2f\n", p, lt_hist_percentile(all, p) / 1000.0,
                __builtin_pow(10.0, nines));
    }
    fclose(fp);
    return 0;
}

static const char ld_gnuplot_fmt[] =
    "set terminal png size 900,500\n"
    "set output '%s-latency-time.png'\n"
    "set title 'certval latency over time'\n"
    "set xlabel 'second of the measured window'\n"
    "set ylabel 'latency (us)'\n"
    "set logscale y\n"
    "plot '%s-timeline.tsv' using 1:5 with lines title 'p50', "
    "'' using 1:6 with lines title 'p99', '' using 1:7 with lines title 'max'\n"
    "set output '%s-latency-dist.png'\n"
    "set title 'certval latency distribution'\n"
    "set xlabel 'percentile'\n"
    "set logscale x\n"
    /* Tic labels are gnuplot format strings: a literal % is written %%,
     * and doubled again for this printf format. */
    "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000, "
    "'99.999%%%%' 100000)\n"
    "plot '%s-dist.tsv' using 3:2 with lines title 'latency'\n";

/* ld_plot runs gnuplot on the TSV files; when gnuplot is absent it says so
 * and the run still succeeds. */
static void ld_plot(const struct ld_opts *o)
{
    char script[LD_PATH_MAX];
    char *argv[3] = {(char *)"gnuplot", script, NULL};
    FILE *fp;
    pid_t pid;
    int status = 0;

    snprintf(script, sizeof(script), "%s.gp", o->plot_prefix);
    fp = fopen(script, "w");
    if (fp == NULL)
        return;
    fprintf(fp, ld_gnuplot_fmt, o->plot_prefix, o->plot_prefix, o->plot_prefix, o->plot_prefix);
    fclose(fp);
    if (posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) != 0) {
        fprintf(stderr, "certval-load: gnuplot not found (apt-get install gnuplot-nox): plots "
                        "skipped; the data is in %s-timeline.tsv and %s-dist.tsv\n",
                o->plot_prefix, o->plot_prefix);
        return;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "certval-load: gnuplot failed; plots may be missing\n");
    else
        fprintf(stderr, "certval-load: plots in %s-latency-time.png and %s-latency-dist.png\n",
                o->plot_prefix, o->plot_prefix);
}

/* ---- main ---- */

static void ld_extra(char *buf, size_t len, const struct ld_opts *o, const struct ld_worker *w,
                     double seconds)
{
    uint64_t lag = 0, late = 0, in_deadline = 0, expired = 0;
    double deny = 0, all = 0;

    for (unsigned k = 0; k < o->threads; k++) {
        const struct ld_thread_result *r = &w[k].res;

        lag = r->max_lag_ns > lag ? r->max_lag_ns : lag;
        late += r->late_calls;
        in_deadline += r->in_deadline;
        expired += r->expired_unsent;
        if (r->first_victim_deny > 0 && (deny == 0 || r->first_victim_deny < deny))
            deny = r->first_victim_deny;
        if (r->first_all_deny > 0 && (all == 0 || r->first_all_deny < all))
            all = r->first_all_deny;
    }
    snprintf(buf, len,
             "{\"max_schedule_lag_us\": %.1f, \"late_calls\": %llu, "
             "\"first_victim_deny_unix\": %.6f, \"first_all_deny_unix\": %.6f, "
             "\"deadline_ms\": %u, \"in_deadline_calls\": %llu, \"goodput_calls_per_s\": %.1f, "
             "\"expired_unsent_calls\": %llu}",
             lag / 1000.0, (unsigned long long)late, deny, all, o->deadline_ms,
             (unsigned long long)in_deadline, seconds > 0 ? (double)in_deadline / seconds : 0.0,
             (unsigned long long)expired);
}

static int ld_report(const struct ld_opts *o, struct ld_worker *w, double seconds)
{
    struct lt_result all;
    char extra[LD_EXTRA_MAX];
    struct lt_run_info info = {
        .tool = "certval-load",
        .mode = o->open_loop ? "open" : "closed",
        .api = o->stream ? "stream" : "unary",
        .target = o->target,
        .fixtures = o->fixtures,
        .mix = o->mix_text,
        .channels = o->channels,
        .concurrency = o->concurrency,
        .batch = o->batch,
        .threads = o->threads,
        .rate = o->open_loop ? o->rate : 0,
        .warmup_s = o->warmup_s,
        .seconds = seconds,
        .extra_json = extra,
    };

    if (lt_result_init(&all) != 0)
        return -1;
    for (unsigned k = 0; k < o->threads; k++)
        lt_result_merge(&all, &w[k].res.res);
    ld_extra(extra, sizeof(extra), o, w, seconds);
    if (lt_report_write("certval-load", o->json_path, &info, &all) != 0) {
        lt_result_clear(&all);
        return -1;
    }
    if (o->plot_prefix != NULL) {
        if (ld_write_tsv(o, w, &all.lat) == 0)
            ld_plot(o);
        else
            fprintf(stderr, "certval-load: cannot write %s-*.tsv\n", o->plot_prefix);
    }
    lt_result_clear(&all);
    return 0;
}

int main(int argc, char **argv)
{
    static struct ld_worker workers[LD_MAX_THREADS];
    struct ld_opts o = {
        .batch = 64, .channels = 2, .concurrency = 8, .threads = 1, .users = 1000,
        .duration_s = 10, .warmup_s = 2, .deadline_ms = 30000,
    };
    struct ld_run run = {.o = &o};
    struct lt_bundle *bundle = NULL;
    char err[512];
    unsigned started = 0;
    double seconds;
    int rc = 1;

    if (ld_parse_args(&o, argc, argv) != 0) {
        ld_usage(stderr);
        return 2;
    }
    if (lt_fixtures_open(&bundle, &o.mix, o.fixtures, err, sizeof(err)) != 0) {
        fprintf(stderr, "certval-load: %s\n", err);
        return 1;
    }
    run.bundle = bundle;
    grpc_init();
    run.t_start = lt_now_ns();
    run.t_measure = run.t_start + (uint64_t)(o.warmup_s * 1e9);
    run.t_end = run.t_measure + (uint64_t)(o.duration_s * 1e9);
    for (unsigned k = 0; k < o.threads; k++) {
        workers[k].run = &run;
        workers[k].index = k;
        if (pthread_create(&workers[k].tid, NULL, ld_worker_main, &workers[k]) != 0)
            break;
        started++;
    }
    for (unsigned k = 0; k < started; k++)
        pthread_join(workers[k].tid, NULL);
    /* A probe that stopped early measured a shorter window. */
    seconds = o.duration_s;
    if (run.stop) {
        uint64_t now = lt_now_ns();

        seconds = now > run.t_measure ? (double)(now - run.t_measure) / 1e9 : 0;
        seconds = seconds < o.duration_s ? seconds : o.duration_s;
    }
    if (started == o.threads) {
        rc = 0;
        for (unsigned k = 0; k < o.threads; k++)
            rc |= workers[k].rc;
        if (rc == 0 && ld_report(&o, workers, seconds) != 0)
            rc = 1;
    }
    for (unsigned k = 0; k < started; k++)
        ld_thread_result_clear(&workers[k].res);
    grpc_shutdown_blocking();
    lt_bundle_free(bundle);
    return rc == 0 ? 0 : 1;
}
