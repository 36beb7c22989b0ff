/*
 * berth-runtime's exec trampoline. The container's init (or an exec'd process) execs this tiny
 * static program from a sealed memfd instead of exec'ing the user's program directly, so that
 * while the program is being exec'd, /proc/self/exe names this sealed copy and never the runtime
 * binary on the host (CVE-2019-5736: a "#!/proc/self/exe" program would otherwise run, and could
 * then open for writing, the host's runtime binary).
 *
 * argv[0]: the number of an O_PATH descriptor of the container's exec.fifo, or "-". With a number,
 *          the fifo is opened for writing through /proc/self/fd/N (blocking until `start` opens it
 *          for reading), one byte is written, and both descriptors are closed.
 * argv[1]: the program to exec.  argv[2..]: its argv (argv[2] is its argv[0]).
 *
 * No libc: raw syscalls only, so the binary is a few KiB and needs nothing from the container.
 */

#if defined(__x86_64__)
#define NR_openat 257
#define NR_write 1
#define NR_close 3
#define NR_execve 59
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
__asm__(".text\n.global _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall trampoline\n\thlt\n");
#elif defined(__aarch64__)
#define NR_openat 56
#define NR_write 64
#define NR_close 57
#define NR_execve 221
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
__asm__(".text\n.global _start\n_start:\n\tmov x0, sp\n\tbl trampoline\n\tbrk #0\n");
#else
#error "unsupported architecture"
#endif

#define AT_FDCWD -100
#define O_WRONLY 01
#define O_CLOEXEC 02000000

static void say(const char *msg)
{
	long n = 0;
	while (msg[n])
		n++;
	sys(NR_write, 2, (long)msg, n, 0);
}

__attribute__((used, noreturn)) void trampoline(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	if (argc < 3) {
		say("berth-runtime: exec trampoline: missing arguments\n");
		sys(NR_exit_group, 127, 0, 0, 0);
	}
	const char *f = argv[0];
	if (f[0] >= '0' && f[0] <= '9') {
		static const char prefix[] = "/proc/self/fd/";
		char path[40];
		long fd = 0, i = 0;
		for (; prefix[i]; i++)
			path[i] = prefix[i];
		for (const char *p = f; *p >= '0' && *p <= '9' && i < 38; p++) {
			fd = fd * 10 + (*p - '0');
			path[i++] = *p;
		}
		path[i] = 0;
		long w = sys(NR_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC, 0);
		if (w < 0) {
			say("berth-runtime: open exec fifo failed\n");
			sys(NR_exit_group, 1, 0, 0, 0);
		}
		sys(NR_write, w, (long)"0", 1, 0);
		sys(NR_close, w, 0, 0, 0);
		sys(NR_close, fd, 0, 0, 0);
	}
	long err = sys(NR_execve, (long)argv[1], (long)(argv + 2), (long)envp, 0);
	say("berth-runtime: exec ");
	say(argv[1]);
	say(err == -13 ? ": permission denied\n" : ": failed\n");
	sys(NR_exit_group, err == -13 ? 126 : 127, 0, 0, 0);
	for (;;)
		;
}
