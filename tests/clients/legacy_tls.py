"""What the client drivers share: a TLS context pinned to one version, like an old device, and
the password options. Standard library only."""
import argparse
import os
import ssl
import sys
import warnings

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def add_tls_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--tls-version", choices=sorted(VERSIONS), default="1.0",
                    help="the only TLS version offered (minimum = maximum); default 1.0")
    ap.add_argument("--cafile", help="CA file that must verify the server certificate")
    ap.add_argument("--insecure", action="store_true",
                    help="skip certificate and name checks (as many old devices do)")


def add_password_args(ap: argparse.ArgumentParser, required: bool = True) -> None:
    g = ap.add_mutually_exclusive_group(required=required)
    g.add_argument("--password", help="the password (beware of shell quoting)")
    g.add_argument("--password-env", metavar="VAR", help="read the password from this env var")
    g.add_argument("--password-file", metavar="FILE",
                   help="read the password from this file, exactly (UTF-8, no newline stripped)")


def password_from(args: argparse.Namespace) -> str:
    if args.password is not None:
        return args.password
    if args.password_env is not None:
        if args.password_env not in os.environ:
            fail(f"environment variable {args.password_env} is not set")
        return os.environ[args.password_env]
    with open(args.password_file, encoding="utf-8") as f:
        return f.read()


def legacy_context(args: argparse.Namespace) -> ssl.SSLContext:
    """Client context offering exactly args.tls_version."""
    if not args.insecure and not args.cafile:
        fail("give --cafile FILE (or --insecure to skip verification)")
    version = VERSIONS[args.tls_version]
    with warnings.catch_warnings():
        # Python marks TLS 1.0/1.1 deprecated; pretending to be an old device is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = version
        ctx.maximum_version = version
    # OpenSSL 3 negotiates TLS 1.0/1.1 only at security level 0 (SHA-1 handshake signatures);
    # it also overrides Debian's system-wide SECLEVEL=2.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if args.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=args.cafile)
    return ctx


def describe_tls(sock) -> str:
    """key=value text for the negotiated version and cipher, or 'tls=none'."""
    if isinstance(sock, ssl.SSLSocket):
        return f"tls_version={sock.version()} cipher={sock.cipher()[0]}"
    return "tls=none"


def fail(message: str, code: int = 1) -> "NoReturn":  # noqa: F821
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
