"""The diffraction timing fitter (SORA's model): Fresnel diffraction by an opaque bar averaged
over the passband, convolved with the projected stellar disk, integrated over each exposure
window with dead time; baseline and bottom fitted. It needs the shadow velocity and the
body's distance; without them it declines and the chain moves on."""
from __future__ import annotations

import attrs
import numpy as np

from occcore.plugin import NotApplicable, TimingFitterSpec, hookimpl
from occplugins.fitters._options import TimingOptions


def _positive_or_none(instance, attribute, value):
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value}")


@attrs.frozen(kw_only=True)
class DiffractionOptions(TimingOptions):
    velocity_kms: float | None = attrs.field(default=None, validator=_positive_or_none)
    immersion_velocity_kms: float | None = attrs.field(default=None, validator=_positive_or_none)
    emersion_velocity_kms: float | None = attrs.field(default=None, validator=_positive_or_none)
    distance_au: float | None = attrs.field(default=None, validator=_positive_or_none)
    star_diameter_km: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    wavelength_um: float = attrs.field(default=0.70, validator=attrs.validators.gt(0))
    bandwidth_um: float = attrs.field(default=0.30, validator=attrs.validators.ge(0))
    n_wavelengths: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    opacity: float = attrs.field(default=1.0, validator=[attrs.validators.gt(0),
                                                         attrs.validators.le(1)])
    # effective wavelength uncertainty (1 sigma) of an unfiltered camera on a star of unknown
    # colour; None: WAVELENGTH_RELATIVE_UNCERTAINTY of wavelength_um, 0: the wavelength is known
    wavelength_uncertainty_um: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0)))


WAVELENGTH_RELATIVE_UNCERTAINTY = 0.15


def _fit(lightcurve, *, options, context):
    from occplugins.fitters._driver import fit_event
    from occplugins.fitters._models import (DiffractionModel, Optics, fresnel_scale_km,
                                            wavelengths_um)
    options = options or DiffractionOptions()
    if options.velocity_kms is None and not (options.immersion_velocity_kms
                                             and options.emersion_velocity_kms):
        raise NotApplicable("the diffraction model needs the shadow velocity (--velocity)")
    if options.distance_au is None:
        raise NotApplicable("the diffraction model needs the body's distance (--distance)")
    lam = wavelengths_um(options.wavelength_um, options.bandwidth_um, options.n_wavelengths)
    fresnel = np.array([fresnel_scale_km(w, options.distance_au) for w in lam])
    v_d = options.immersion_velocity_kms or options.velocity_kms
    v_r = options.emersion_velocity_kms or options.velocity_kms
    optics_d = Optics(velocity_kms=abs(v_d), fresnel_km=fresnel,
                      star_diameter_km=options.star_diameter_km, opacity=options.opacity)
    optics_r = attrs.evolve(optics_d, velocity_kms=abs(v_r))
    edge_time = max(optics_d.edge_time_s(), optics_r.edge_time_s())

    def make_model(start, end, width_s, wavelength_scale=1.0):
        # edges closer than ~10 Fresnel scales interfere: use the full bar
        full = width_s * min(v_d, v_r) < 10 * fresnel.max() + options.star_diameter_km
        if wavelength_scale == 1.0:
            o_d, o_r = optics_d, optics_r
        else:           # the Fresnel scale goes as the square root of the wavelength
            scaled = fresnel * np.sqrt(wavelength_scale)
            o_d = attrs.evolve(optics_d, fresnel_km=scaled)
            o_r = attrs.evolve(optics_r, fresnel_km=scaled)
        return DiffractionModel(start, end, o_d, o_r, full_bar=bool(full))

    relative = (WAVELENGTH_RELATIVE_UNCERTAINTY if options.wavelength_uncertainty_um is None
                else options.wavelength_uncertainty_um / options.wavelength_um)

    physics = {"velocity_kms": options.velocity_kms, "immersion_velocity_kms": v_d,
               "emersion_velocity_kms": v_r, "distance_au": options.distance_au,
               "star_diameter_km": options.star_diameter_km,
               "wavelengths_um": lam.tolist(), "fresnel_scale_km": float(fresnel.mean()),
               "fresnel_scale_s": float(fresnel.mean() / abs(v_d)), "opacity": options.opacity,
               "wavelength_relative_uncertainty": relative}
    return fit_event(lightcurve, make_model, edge_time, options, context, "diffraction", physics,
                     wavelength_relative_uncertainty=relative)


@hookimpl
def occcore_timing_fitters():
    yield TimingFitterSpec(name="diffraction", summary="Fresnel diffraction by a bar + passband "
                           "+ stellar disk + exposure (SORA's model)", fit=_fit,
                           options=DiffractionOptions)
