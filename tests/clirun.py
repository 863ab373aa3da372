"""Running the command line in-process, as the tests do."""


def run_cli(argv, capsys):
    """``(exit code, stdout, stderr)`` of ``hwgen ARGV`` run in this process (what came before is dropped)."""
    from hwgen.cli import main
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
