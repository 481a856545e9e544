"""What every offline job shares: a progress bar with an ETA, and which units a killed run finished.
(Their files are written whole by ``app.files``.)"""
import json

from tqdm import tqdm

from app.errors import DeepVisError
from app.unit_images import unit_dir


def progress_bar(total: int, desc: str, unit: str = "image", enabled: bool = True, initial: int = 0) -> tqdm:
    """A tqdm bar (count, rate and ETA) on stderr; ``initial`` counts work done before a resume."""
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not enabled,
                dynamic_ncols=True, smoothing=0.1)


def estimate_line(count: int, seconds_each: float, unit: str = "unit") -> str:
    """"N units x ~S s/unit = ~T": what a long run will take, from its first part."""
    total = count * seconds_each
    if total < 120:
        spent = f"{total:.0f} s"
    elif total < 7200:
        spent = f"{total / 60:.0f} min"
    else:
        spent = f"{total / 3600:.1f} h"
    return f"{count} {unit}s x ~{seconds_each:.2g} s/{unit} = ~{spent}"


def done_units(root, layer: str, units, last_file: str, differs=None) -> set:
    """Units whose ``last_file`` (e.g. info.json) is in their folder under ``root``: a job writes
    it last, whole, so such a unit is complete and a resumed run skips it.

    differs(unit, record): how the JSON record in ``last_file`` was made otherwise than this run
    would make it (another model, other options), or None; a unit made otherwise stops the run with
    that line: one folder never mixes two runs' images."""
    done = set()
    for unit in units:
        path = unit_dir(root, layer, unit) / last_file
        if not path.is_file():
            continue
        if differs is not None:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                difference = differs(unit, record)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                difference = f"not a record of this job ({error})"
            if difference:
                raise DeepVisError(f"{path}: made by another run: {difference}; choose another --out, or delete "
                                   f"{path.parent.parent} to make its units again")
        done.add(unit)
    return done
