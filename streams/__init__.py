"""esatrack: streaming message tracking for Cisco Secure Email (IronPort ESA) gateways."""

__version__ = "0.1.0"
