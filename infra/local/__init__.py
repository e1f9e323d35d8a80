"""The local environment: the whole gateway path of the `local` stack on this machine."""
