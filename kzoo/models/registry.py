"""kzoo's model classes by name, for code that meets a class as a name (a preset's config.json, a Hugging Face
architecture, an architecture record) below the modules that define the classes.

`kzoo/models/__init__.py` registers its public backbones and tasks once it has imported them, so any import of
`kzoo.models...` fills this table before a lookup runs. Looking classes up here, rather than importing
`kzoo.models`, keeps `preset_io`, `backbone` and the Hugging Face reader free of import cycles.
"""

_CLASSES = {}


def register(classes):
    """Add `{name: class}` (the base classes Backbone and Task included)."""
    _CLASSES.update(classes)


def model_class(class_name):
    """The kzoo model class (a backbone or a task) called `class_name`, or None."""
    return _CLASSES.get(class_name) if isinstance(class_name, str) else None


def model_class_names(base_name):
    """The sorted names of the concrete classes derived from the class called `base_name` ("Backbone", "Task")."""
    base = _CLASSES[base_name]
    return sorted(name for name, cls in _CLASSES.items()
                  if issubclass(cls, base) and name not in ("Backbone", "Task", "Pretrainer"))
