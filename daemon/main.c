// SPDX-License-Identifier: MIT
/*
 * dirtyd: owns iommufd domains, harvests their dirty bitmaps and serves
 * dirty ranges to VMMs over a Unix socket.  See dirtyd(8).
 *
 * Start-up: options, configuration, backend, harvest engine, event loop,
 * configured guests, socket; then READY=1.  Everything afterwards runs on
 * the libevent loop: clients, harvest completions (the engine's eventfd),
 * timers (rounds, STATUS=, WATCHDOG=1) and signals: SIGTERM, SIGINT stop,
 * SIGUSR2 exits for a restart, SIGHUP reloads the configuration.  The
 * signals are blocked until the loop handles them, so that one sent
 * during a start (a restart) is handled once dirtyd serves, never by a
 * death half-way through an adoption.
 *
 * Owns: what an exit does to the domains.  No exit destroys one: a stop
 * (SIGTERM, SIGINT) and SIGUSR2 leave every domain's kernel context to
 * whoever else holds it (systemd's file descriptor store, a VMM's
 * descriptors), dirtyd's own descriptors closed (dirtyd(8) SIGNALS); the
 * kernel frees a domain when its last descriptor closes.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon/access/access.h"
#include "daemon/config/config.h"
#include "daemon/domain/device.h"
#include "daemon/domain/domain.h"
#include "daemon/harvest/harvest.h"
#include "daemon/util/log.h"
#include "daemon/server/server.h"
#include "daemon/server/session.h"
#include "daemon/guest/simhost.h"
#include "daemon/state/state.h"
#include "kernel/backend.h"
#include "kernel/dma_load.h"

#ifndef DIRTYD_VERSION
#define DIRTYD_VERSION "unknown"
#endif
#ifndef DIRTYD_BUILT_IN		/* CMakeLists.txt: the backends built in */
#define DIRTYD_BUILT_IN "unknown"
#endif

#define EXIT_CONFIG 2
#define STATUS_INTERVAL_S 1

/* A command-line setting, applied over the file in the order given. */
struct override {
	const char *section;	/* NULL: arg is "section.key=value" */
	const char *key;
	const char *arg;
};

/* The command line, parsed once: a reload reads the file again and
 * applies the same overrides over it. */
struct cmdline {
	const char *path;
	bool given;		/* --config: the file must exist */
	bool check;		/* --check-config */
	struct override *ov;
	size_t nov;
};

struct daemon_loop {
	struct server *srv;
	struct config *cfg;	/* srv->cfg, writable: a reload */
	const struct cmdline *cl;
	struct event *ev_term, *ev_int, *ev_usr2, *ev_hup, *ev_status,
		     *ev_watchdog;
	uint64_t status_rounds;
	bool keep;		/* SIGUSR2: exit for a restart, state kept */
};

/* The signals the loop handles; blocked until it does. */
static const int loop_signals[] = { SIGTERM, SIGINT, SIGUSR2, SIGHUP };

/* Exit status after SIGUSR2: a failure to systemd, so that
 * Restart=on-failure starts the (new) binary, which adopts the state. */
#define EXIT_RESTART 75

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dirtyd [options]\n"
		"  -c, --config FILE       configuration (default "
		CONFIG_DEFAULT_PATH ")\n"
		"  -b, --backend KIND      iommufd or sim ([daemon] backend)\n"
		"  -s, --socket PATH       where to listen ([daemon] socket)\n"
		"  -l, --log-level LEVEL   error, warning, notice, info or "
		"debug\n"
		"  -w, --workers N         harvest threads, 0: one per CPU\n"
		"      --set SECTION.KEY=VALUE\n"
		"                          any configuration key (a guest: "
		"guest.NAME.KEY=VALUE)\n"
		"      --check-config      check the configuration and exit\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n");
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_loop *loop = arg;

	log_info("%s: stopping; every domain stays for whoever holds its "
		 "descriptors (the file descriptor store, a VMM)",
		 strsignal((int)sig));
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	event_base_loopbreak(loop->srv->base);
}

static void on_keep(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_loop *loop = arg;

	log_notice("%s: exiting for a restart; domains and subscriptions "
		   "stay in the file descriptor store", strsignal((int)sig));
	sd_notify(0, "STATUS=exiting for a restart, state kept");
	loop->keep = true;
	event_base_loopbreak(loop->srv->base);
}

static int config_build(struct config *cfg, const struct cmdline *cl);

/*
 * SIGHUP: the configuration again, from the same file and command line;
 * what the running daemon can take changes (config_reload()), the rest is
 * logged as needing a restart.  A file that does not load changes
 * nothing.  No client is dropped.
 */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_loop *loop = arg;
	struct config next = { 0 };
	char changed[1024], fixed[256];
	struct timespec ts;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* systemd 253's Type=notify-reload wants the time with it */
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		   (unsigned long long)ts.tv_sec * 1000000ULL +
		   (unsigned long long)ts.tv_nsec / 1000, loop->cl->path);
	r = config_build(&next, loop->cl);
	if (r) {
		log_error("%s: reloading %s failed (the error above): the "
			  "configuration is unchanged", strsignal((int)sig),
			  loop->cl->path);
		config_release(&next);
		sd_notify(0, "READY=1\nSTATUS=reload failed, configuration "
			  "unchanged");
		return;
	}
	r = config_reload(loop->cfg, &next, changed, sizeof(changed), fixed,
			  sizeof(fixed));
	config_release(&next);
	log_set_max_level(loop->cfg->log_level);
	access_init(loop->srv);
	if (fixed[0])
		log_warning("%s: %s: %s changed, and only a restart applies "
			    "that: the running values stay",
			    strsignal((int)sig), loop->cl->path, fixed);
	log_notice("%s: reloaded %s: %s", strsignal((int)sig), loop->cl->path,
		   r ? changed : "nothing changed");
	sd_notifyf(0, "READY=1\nSTATUS=reloaded: %d changed%s", r,
		   fixed[0] ? ", some need a restart" : "");
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
	struct daemon_loop *loop = arg;
	struct server *srv = loop->srv;
	unsigned int ndomains = 0;
	struct domain *d;

	list_for_each_entry(d, &srv->domains, link)
		ndomains += !d->dying;
	sd_notifyf(0, "STATUS=%u domains, %u clients, %.1f rounds/s",
		   ndomains, srv->nsessions,
		   (double)(srv->rounds - loop->status_rounds) /
		   STATUS_INTERVAL_S);
	loop->status_rounds = srv->rounds;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

static int timer_start(struct server *srv, struct event **ev,
		       event_callback_fn fn, void *arg, uint64_t usec)
{
	struct timeval tv = {
		.tv_sec = usec / 1000000,
		.tv_usec = usec % 1000000,
	};

	*ev = event_new(srv->base, -1, EV_PERSIST, fn, arg);
	if (!*ev || event_add(*ev, &tv) < 0)
		return -ENOMEM;
	return 0;
}

/* Block (or unblock) the signals the loop handles, in this thread and
 * every thread it starts from now on. */
static void signals_block(bool block)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(loop_signals) / sizeof(loop_signals[0]);
	     i++)
		sigaddset(&set, loop_signals[i]);
	pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static int loop_setup(struct daemon_loop *loop)
{
	struct server *srv = loop->srv;
	uint64_t usec = 0;
	int r;

	loop->ev_term = evsignal_new(srv->base, SIGTERM, on_stop, loop);
	loop->ev_int = evsignal_new(srv->base, SIGINT, on_stop, loop);
	loop->ev_usr2 = evsignal_new(srv->base, SIGUSR2, on_keep, loop);
	loop->ev_hup = evsignal_new(srv->base, SIGHUP, on_reload, loop);
	if (!loop->ev_term || !loop->ev_int || !loop->ev_usr2 ||
	    !loop->ev_hup || event_add(loop->ev_term, NULL) < 0 ||
	    event_add(loop->ev_int, NULL) < 0 ||
	    event_add(loop->ev_usr2, NULL) < 0 ||
	    event_add(loop->ev_hup, NULL) < 0)
		return log_error_errno(-ENOMEM, "watching signals failed");
	/* handled from here on: those sent during the start come now */
	signals_block(false);
	r = timer_start(srv, &loop->ev_status, on_status, loop,
			STATUS_INTERVAL_S * 1000000ULL);
	if (r < 0)
		return log_error_errno(r, "the status timer failed");
	r = sd_watchdog_enabled(0, &usec);
	if (r < 0)
		log_warning_errno(r, "reading $WATCHDOG_USEC failed; no "
				  "watchdog");
	if (r > 0) {
		r = timer_start(srv, &loop->ev_watchdog, on_watchdog, loop,
				usec / 2 ? usec / 2 : 1);
		if (r < 0)
			return log_error_errno(r, "the watchdog timer failed");
		log_debug("watchdog: WATCHDOG=1 every %llu us",
			  (unsigned long long)usec / 2);
	}
	return 0;
}

static void loop_release(struct daemon_loop *loop)
{
	struct event *evs[] = {
		loop->ev_term, loop->ev_int, loop->ev_usr2, loop->ev_hup,
		loop->ev_status, loop->ev_watchdog,
	};

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i])
			event_free(evs[i]);
}

/* Options into @cl (cl->ov has room for argc); returns 0, 1 (exit 0:
 * help, version) or -EINVAL. */
static int parse_args(int argc, char **argv, struct cmdline *cl)
{
	struct override *ov = cl->ov;
	size_t *nov = &cl->nov;
	enum { OPT_SET = 0x100, OPT_CHECK };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "backend", required_argument, NULL, 'b' },
		{ "socket", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "set", required_argument, NULL, OPT_SET },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:b:s:l:w:hV", opts,
				NULL)) != -1) {
		switch (c) {
		case 'c':
			cl->path = optarg;
			cl->given = true;
			break;
		case 'b':
			ov[(*nov)++] = (struct override){ "daemon", "backend",
							  optarg };
			break;
		case 's':
			ov[(*nov)++] = (struct override){ "daemon", "socket",
							  optarg };
			break;
		case 'l':
			ov[(*nov)++] = (struct override){ "daemon",
							  "log_level", optarg };
			break;
		case 'w':
			ov[(*nov)++] = (struct override){ "daemon", "workers",
							  optarg };
			break;
		case OPT_SET:
			ov[(*nov)++] = (struct override){ NULL, NULL, optarg };
			break;
		case OPT_CHECK:
			cl->check = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("dirtyd " DIRTYD_VERSION "\nbuilt in: "
			       DIRTYD_BUILT_IN "\n");
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* The configuration @cl names, checked: the file, then the command
 * line's overrides; 0 or -EINVAL (logged). */
static int config_build(struct config *cfg, const struct cmdline *cl)
{
	int r;

	r = config_init(cfg);
	if (r < 0)
		return r;
	r = config_load_file(cfg, cl->path, cl->given);
	for (size_t i = 0; !r && i < cl->nov; i++) {
		const struct override *ov = &cl->ov[i];
		char origin[64];

		if (!ov->section) {
			r = config_set_arg(cfg, ov->arg);
			continue;
		}
		snprintf(origin, sizeof(origin), "--%s", ov->key);
		for (char *p = origin; *p; p++)
			if (*p == '_')
				*p = '-';
		r = config_set(cfg, ov->section, ov->key, ov->arg, origin);
	}
	if (!r)
		r = config_check(cfg);
	return r;
}

/*
 * Each domain holds descriptors of its own (its /dev/iommu, its devices;
 * the sim's memfd), on top of one per client: the soft limit (1024 under
 * systemd) goes up to the hard one, as systemd.exec(5) advises for
 * programs that need many; dirtyd uses epoll, never select().
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warning_errno(-errno, "raising the descriptor limit to %llu "
				  "failed", (unsigned long long)rl.rlim_max);
}

static int open_backend(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	struct backend_config bc;
	struct backend_caps caps;
	int r;

	simhost_backend_config(cfg, &bc);
	backend_kind_caps(cfg->backend, &caps);
	/* adopting the kept context if the store handed one back */
	r = state_open(srv, &bc);
	if (r == -ENOENT && caps.iommufd)
		return log_error_errno(r, "cannot open %s: this kernel has no "
				       "iommufd (Linux 6.7 or newer with "
				       "CONFIG_IOMMUFD; modprobe iommufd); "
				       "set backend = sim to run on a "
				       "simulated IOMMU", cfg->iommufd_path);
	if (r == -EOPNOTSUPP && caps.iommufd &&
	    !strcmp(cfg->device_provider, "mock"))
		return log_error_errno(r, "device_provider = mock needs the "
				       "kernel's mock IOMMU "
				       "(CONFIG_IOMMUFD_TEST) and a dirtyd "
				       "built with the tests (DIRTYD_TESTS)");
	if (r == -EOPNOTSUPP && !caps.iommufd)
		return log_error_errno(r, "this dirtyd is built without the "
				       "simulated host (DIRTYD_SIM=OFF)");
	if (r < 0)
		return log_error_errno(r, "opening the %s backend failed",
				       backend_kind_name(cfg->backend));
	simhost_log_kernel(srv->backend);
	return 0;
}

/*
 * The end of the process; no domain is destroyed (the top of this file).
 * @keep (SIGUSR2, or a start that failed after adopting the store): stop
 * what runs, a MAP or UNMAP under way joined (never answered: the
 * successor undoes or finishes it by its intent), the last commit made;
 * exit() reclaims the rest.  Otherwise (a stop, or an exit with nothing
 * kept): changes under way finished, the last commit made, then the
 * process's own memory freed (so that the sanitizers see it) and each
 * domain's context left (backend_leave()): what the store and the VMMs
 * hold of it stays, the rest the kernel frees with dirtyd's descriptors.
 */
static void server_release(struct server *srv, bool keep)
{
	struct domain *d;
	unsigned int n = 0;

	server_stop_listening(srv);
	list_for_each_entry(d, &srv->domains, link) {
		dma_load_stop(d->load);
		d->load = NULL;
		n += !d->dying;
	}
	if (keep)
		domain_changes_join(srv);
	else
		domain_changes_wait(srv);
	if (srv->engine)
		harvest_engine_wait(srv->engine);
	if (keep) {
		/* what the last pass owes, for the successor */
		journal_flush(srv);
		return;
	}
	/* the last commit; the store keeps it as it is from here on */
	state_leave(srv);
	if (n)
		log_notice("leaving %u domain%s: %s", n, n > 1 ? "s" : "",
			   state_keeps(srv) ?
			   "kept in the file descriptor store for the next "
			   "start (a VMM's descriptors keep its own)" :
			   "no file descriptor store keeps them; each is "
			   "freed by the kernel unless a VMM holds its "
			   "descriptors");
	session_free_all(srv);
	server_hang_ups_free(srv);
	if (srv->engine)
		domain_leave_all(srv);
	device_caps_free(srv);
	if (srv->engine)
		harvest_engine_free(srv->engine);
	state_exit(srv);
	backend_close(srv->backend);
}

int main(int argc, char **argv)
{
	struct config cfg = { 0 };
	struct server srv = {
		.cfg = &cfg,
		.listen_fd = -1,
		.activated_fd = -1,
		.next_domain_id = 1,
	};
	struct cmdline cl = { .path = CONFIG_DEFAULT_PATH };
	struct daemon_loop loop = { .srv = &srv, .cfg = &cfg, .cl = &cl };
	struct event *ev_engine = NULL;
	int r, status = EXIT_FAILURE;

	log_setup("dirtyd", LOG_INFO);
	list_init(&srv.sessions);
	list_init(&srv.domains);
	list_init(&srv.parks);
	list_init(&srv.hangups);
	signal(SIGPIPE, SIG_IGN);
	signals_block(true);

	cl.ov = calloc(argc + 1, sizeof(*cl.ov));
	if (!cl.ov)
		return EXIT_FAILURE;
	r = parse_args(argc, argv, &cl);
	if (!r)
		r = config_build(&cfg, &cl);
	if (r) {
		config_release(&cfg);
		free(cl.ov);
		return r > 0 ? EXIT_SUCCESS : EXIT_CONFIG;
	}
	log_set_max_level(cfg.log_level);
	if (cl.check) {
		log_info("configuration is valid");
		config_release(&cfg);
		free(cl.ov);
		return EXIT_SUCCESS;
	}
	/* config_check() resolved admin_group for --check-config and a start
	 * alike: nothing about the configuration is refused after this */
	access_init(&srv);
	raise_fd_limit();

	if (state_take_fds(&srv, &srv.activated_fd) < 0 ||
	    open_backend(&srv) < 0)
		goto out;
	r = harvest_engine_new(srv.backend, &(struct harvest_engine_config){
		.workers = cfg.workers,
	}, &srv.engine);
	if (r < 0) {
		log_error_errno(r, "starting the harvest engine failed");
		goto out;
	}
	srv.workers = harvest_engine_workers(srv.engine);
	srv.base = event_base_new();
	if (!srv.base) {
		log_error("creating the event loop failed");
		goto out;
	}
	ev_engine = event_new(srv.base, harvest_engine_eventfd(srv.engine),
			      EV_READ | EV_PERSIST, domain_engine_event, &srv);
	if (!ev_engine || event_add(ev_engine, NULL) < 0) {
		log_error("watching the harvest engine failed");
		goto out;
	}
	if (state_restore(&srv) < 0 || simhost_create_guests(&srv) < 0)
		goto out;
	if (server_listen(&srv) < 0 || loop_setup(&loop) < 0)
		goto out;

	log_info("dirtyd %s ready: %s backend, harvest by %s (%u workers)",
		 DIRTYD_VERSION, backend_name(srv.backend),
		 harvest_engine_mode(srv.engine), srv.workers);
	sd_notifyf(0, "READY=1\nSTATUS=ready: %s backend, %zu guests",
		   backend_name(srv.backend), cfg.n_guests);
	r = event_base_dispatch(srv.base);
	if (r < 0)
		log_error("the event loop failed");
	else
		status = loop.keep ? EXIT_RESTART : EXIT_SUCCESS;
out:
	loop_release(&loop);
	/* SIGUSR2, or a failure with the state kept: as after a kill */
	if (status != EXIT_SUCCESS && state_keeps(&srv)) {
		server_release(&srv, true);
		/* what the kernel and the memfds hold stays for the next
		 * start; the process's own memory goes with it, unfreed */
		fflush(NULL);
		_exit(status);
	}
	server_release(&srv, false);
	if (ev_engine)
		event_free(ev_engine);
	if (srv.base)
		event_base_free(srv.base);
	libevent_global_shutdown();
	config_release(&cfg);
	free(cl.ov);
	return status;
}
