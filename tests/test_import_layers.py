"""vmamba_mm's modules import one way only: no module reaches back up through a chain of imports.

The walk reads every import statement of the package, those inside functions included (an import
deferred into a function hides a cycle without removing it), and resolves each to the module it loads.
"""
import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('vmamba_mm', 'kernels')


def _module_name(path):
    parts = list(path.relative_to(PACKAGE_ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _modules():
    return {_module_name(path): path for package in PACKAGES for path in (PACKAGE_ROOT / package).rglob('*.py')}


def _imports(name, path, modules):
    """The modules of the project that `name` imports, anywhere in its file."""
    is_package = path.name == '__init__.py'
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split('.')
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                source = '.'.join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            targets = [f'{source}.{alias.name}' if f'{source}.{alias.name}' in modules else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name inside a module
                target = target.rpartition('.')[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_walk_sees_cycles_through_deferred_imports():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert cycles(graph) == [['a', 'b', 'c']]
    # In the project's own graph: a module-level and a relative import.
    graph = import_graph()
    assert 'vmamba_mm.loading' in graph['vmamba_mm.models.backbones.vmamba']
    assert 'vmamba_mm.converters.official' in graph['vmamba_mm.loading']


def test_kernels_never_import_vmamba_mm():
    graph = import_graph()
    assert not {(name, target) for name, targets in graph.items() if name.startswith('kernels')
                for target in targets if target.startswith('vmamba_mm')}

