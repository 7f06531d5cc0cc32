"""The bedroom's environment sensors on I2C (smbus2): drivers, readings and errors.

Parts: Sensirion SHT4x and Bosch BME280 (climate), ams TSL2591 and Vishay VEML7700 (light).
Each driver is given its bus and its `sleep`; `hardware.environment.fakes` has the
register-level fakes that are also the simulated twins.
"""

from hardware.environment._bus import (
    ClimateReading,
    I2CBus,
    LightReading,
    SensorCrcError,
    SensorError,
    SensorIdMismatch,
    SensorNotResponding,
    SensorRangeError,
    open_bus,
)
from hardware.environment.bme280 import Bme280
from hardware.environment.sht4x import Sht4x
from hardware.environment.tsl2591 import Tsl2591
from hardware.environment.veml7700 import Veml7700

__all__ = [
    "Bme280",
    "ClimateReading",
    "I2CBus",
    "LightReading",
    "SensorCrcError",
    "SensorError",
    "SensorIdMismatch",
    "SensorNotResponding",
    "SensorRangeError",
    "Sht4x",
    "Tsl2591",
    "Veml7700",
    "open_bus",
]
