"""Get CIFAR-10: ``bincount data fetch`` downloads and checks the official binary release.

    bincount data fetch [--dir DIR] [--from FILE] [--url URL --md5 HEX] [--force] [--quiet]

Puts ``cifar-10-batches-bin/`` (five training batches, one test batch) in ``DIR`` (default
``data/`` of the repository, where the loaders look without options). The download resumes
where an interrupted one stopped; the archive's MD5 is checked before anything is extracted,
and the folder appears in one rename. See :mod:`bincount.model.data.fetch`.
"""

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("fetch", help="download, check and extract the CIFAR-10 binary release",
                       description="Download (resumable), check (MD5) and extract (atomically) "
                                   "the official CIFAR-10 binary release.")
    p.set_defaults(_parser=p)          # a stray argument is named by 'bincount data fetch'
    p.add_argument("--dir", default=None,
                   help="folder to put cifar-10-batches-bin/ in (default: data/ of the "
                        "repository, where the loaders look)")
    p.add_argument("--from", dest="source", metavar="FILE", default=None,
                   help="use this copy of cifar-10-binary.tar.gz instead of downloading")
    p.add_argument("--url", default=None,
                   help="download from this address instead of the data set's authors "
                        "(a mirror; needs --md5)")
    p.add_argument("--md5", default=None,
                   help="expected MD5 of the archive (default: the published one)")
    p.add_argument("--force", action="store_true",
                   help="fetch and extract again even if DIR already holds the release")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args):
    import re

    from bincount.errors import BincountError
    from bincount.model.data import fetch as data_fetch

    if args.md5 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", args.md5):
        raise BincountError(f"--md5 {args.md5!r}; expected 32 hexadecimal digits")
    if args.url is not None and args.md5 is None:
        raise BincountError("--url needs --md5: a mirror's file is checked against the MD5 "
                            "you give")
    if args.url is not None:
        data_fetch.check_url(args.url)
    if args.url is not None and args.source is not None:
        raise BincountError("--url and --from exclude each other: --from uses a file on disk")
    folder = data_fetch.fetch(args.dir, source=args.source,
                              url=args.url or data_fetch.OFFICIAL_URL,
                              md5=args.md5 or data_fetch.OFFICIAL_MD5,
                              force=args.force, quiet=args.quiet)
    print(f"CIFAR-10 binary release in {folder}")
    return 0
