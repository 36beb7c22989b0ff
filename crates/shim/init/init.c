/*
 * berth-init: the process `docker run --init` puts at pid 1 of a container (tini's job).
 *
 *   berth-init [--] PROGRAM [ARGS...]
 *
 * Runs PROGRAM as its child (found through $PATH when it has no '/'), forwards SIGHUP, SIGINT,
 * SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 and SIGWINCH to it, reaps every zombie the container's
 * orphans leave behind, and exits with the child's status (128 + N when signal N ended it).
 * When PROGRAM cannot be exec'd: `berth-init: exec PROGRAM: <reason>` on stderr and status
 * 127 (not found) or 126 (found but not executable), as shells do.
 *
 * Signals are blocked and collected with rt_sigtimedwait, so there are no handlers and no race
 * between a child's exit and waiting for it. No libc: raw syscalls only (like the runtime's
 * exec trampoline), so the static binary is a few KiB and needs nothing from the image.
 */

#if defined(__x86_64__)
#define NR_write 1
#define NR_rt_sigprocmask 14
#define NR_clone 56
#define NR_execve 59
#define NR_wait4 61
#define NR_kill 62
#define NR_rt_sigtimedwait 128
#define NR_prctl 157
#define NR_exit_group 231
static long sys(long n, long a, long b, long c, long d)
{
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}
__asm__(".text\n.global _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall init_main\n\thlt\n");
#elif defined(__aarch64__)
#define NR_write 64
#define NR_rt_sigprocmask 135
#define NR_clone 220
#define NR_execve 221
#define NR_wait4 260
#define NR_kill 129
#define NR_rt_sigtimedwait 137
#define NR_prctl 167
#define NR_exit_group 94
static long sys(long n, long a, long b, long c, long d)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}
__asm__(".text\n.global _start\n_start:\n\tmov x0, sp\n\tbl init_main\n\tbrk #0\n");
#else
#error "unsupported architecture"
#endif

#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGUSR1 10
#define SIGUSR2 12
#define SIGTERM 15
#define SIGCHLD 17
#define SIGWINCH 28
#define SIG_BLOCK 0
#define SIG_SETMASK 2
#define WNOHANG 1
#define PR_SET_CHILD_SUBREAPER 36
#define ENOENT 2
#define EACCES 13
#define ENOTDIR 20

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

static __attribute__((noreturn)) void die(long code)
{
	sys(NR_exit_group, code, 0, 0, 0);
	for (;;)
		;
}

static long len(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	return n;
}

static void say(const char *msg)
{
	sys(NR_write, 2, (long)msg, len(msg), 0);
}

static const char *reason(long err)
{
	switch (err) {
	case ENOENT: return "No such file or directory";
	case EACCES: return "Permission denied";
	case 7: return "Argument list too long";
	case 8: return "Exec format error";
	case 12: return "Cannot allocate memory";
	case ENOTDIR: return "Not a directory";
	case 21: return "Is a directory";
	case 26: return "Text file busy";
	case 36: return "File name too long";
	case 40: return "Too many levels of symbolic links";
	default: return "exec failed";
	}
}

static const char *getenv_path(char **envp)
{
	for (; *envp; envp++) {
		const char *e = *envp;
		if (e[0] == 'P' && e[1] == 'A' && e[2] == 'T' && e[3] == 'H' && e[4] == '=')
			return e + 5;
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* execvp: returns the errno that explains the failure. */
static long exec_search(char **argv, char **envp)
{
	const char *cmd = argv[0];
	for (const char *p = cmd; *p; p++)
		if (*p == '/')
			return -sys(NR_execve, (long)cmd, (long)argv, (long)envp, 0);
	static char buf[4096];
	long n = len(cmd), err = ENOENT, saw_eacces = 0;
	const char *dir = getenv_path(envp);
	for (;;) {
		const char *end = dir;
		while (*end && *end != ':')
			end++;
		long d = end - dir;
		if (d + 1 + n + 1 <= (long)sizeof(buf)) {
			long i = 0;
			for (const char *p = dir; p < end; p++)
				buf[i++] = *p;
			if (d == 0)
				buf[i++] = '.';
			buf[i++] = '/';
			for (long j = 0; j <= n; j++)
				buf[i++] = cmd[j];
			err = -sys(NR_execve, (long)buf, (long)argv, (long)envp, 0);
			if (err == EACCES)
				saw_eacces = 1;
			else if (err != ENOENT && err != ENOTDIR)
				return err;
		}
		if (!*end)
			break;
		dir = end + 1;
	}
	return saw_eacces ? EACCES : err;
}

static int exit_code(int status)
{
	if ((status & 0x7f) == 0)
		return (status >> 8) & 0xff;
	return 128 + (status & 0x7f);
}

__attribute__((used, noreturn)) void init_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	char **cmd = argv + 1;
	if (*cmd && cmd[0][0] == '-' && cmd[0][1] == '-' && cmd[0][2] == 0)
		cmd++;
	if (!*cmd) {
		say("usage: berth-init [--] PROGRAM [ARGS...]\n");
		die(2);
	}

	unsigned long set = 1UL << (SIGCHLD - 1), none = 0;
	for (unsigned i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		set |= 1UL << (forwarded[i] - 1);
	sys(NR_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, 8);
	/* Zombies reach us even when we are not pid 1 (e.g. under a shared pid namespace). */
	sys(NR_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0);

	long child = sys(NR_clone, SIGCHLD, 0, 0, 0);
	if (child < 0) {
		say("berth-init: fork failed\n");
		die(1);
	}
	if (child == 0) {
		sys(NR_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
		long err = exec_search(cmd, envp);
		say("berth-init: exec ");
		say(cmd[0]);
		say(": ");
		say(reason(err));
		say("\n");
		die(err == ENOENT || err == ENOTDIR ? 127 : 126);
	}

	long info[16];
	for (;;) {
		long sig = sys(NR_rt_sigtimedwait, (long)&set, (long)info, 0, 8);
		if (sig < 0)
			continue; /* EINTR */
		if (sig != SIGCHLD) {
			sys(NR_kill, child, sig, 0, 0);
			continue;
		}
		for (;;) {
			int status = 0;
			long pid = sys(NR_wait4, -1, (long)&status, WNOHANG, 0);
			if (pid <= 0)
				break;
			if (pid == child)
				die(exit_code(status));
		}
	}
}
