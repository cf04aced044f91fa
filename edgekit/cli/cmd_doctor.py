"""`edgekit doctor`: what this machine has for running models, and what to do next."""

import click

from edgekit.cli.common import handles_errors, json_option, print_output


@click.command("doctor")
@json_option()
@handles_errors
def doctor_command(as_json):
    """What this machine has for running models: backend, libedgetpu, Edge TPUs, and what to do next.

    \b
    Example:
      edgekit doctor --json
    """
    from edgekit.runtime.diagnosis import diagnose

    print_output(doctor_document(diagnose()), as_json, format_doctor)


def doctor_document(diagnosis):
    """The document `edgekit doctor --json` prints, from a `runtime.diagnosis.Diagnosis`."""
    return dict(diagnosis._asdict(), libedgetpu=diagnosis.libedgetpu._asdict(),
                edge_tpus=[d._asdict() for d in diagnosis.edge_tpus],
                hardware_seen=[d._asdict() for d in diagnosis.hardware_seen])


def format_doctor(document):
    lib = document["libedgetpu"]
    lines = [f"python       {document['python']} ({document['platform']})",
             f"backend      {document['backend']}",
             f"libedgetpu   {lib['library']}: " + ("found" if lib["found"] else "not found") +
             (f", runtime version {lib['runtime_version']}" if lib["runtime_version"] else ""),
             "edge tpus    " + (", ".join(f"{d['type']} {d['path']}" for d in document["edge_tpus"]) or "none"),
             "hardware     " + (", ".join(f"{d['type']} {d['path']}" for d in document["hardware_seen"])
                                or "none on USB or PCIe")]
    lines += [f"next         {step}" for step in document["next"]]
    return "\n".join(lines)
