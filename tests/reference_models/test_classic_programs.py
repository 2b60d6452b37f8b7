"""Classic PyTorch programs run with only their import lines changed (issue 17, "done when").

Each program below is PyTorch code as a student writes it (after the official CIFAR-10 tutorial,
pytorch/examples' MNIST and word-language-model, the save/resume and fine-tuning tutorials). It
runs once as written, with ``import torch``, and once with only its ``import``/``from`` lines
rewritten for ``reference_models`` (``port``); every other line is the same text. The results
(the loss of every step, accuracies, generated text, checks the program makes) must agree.

What the harness does, the same for both runs, so that the two runs can be compared step by step:

- data: torchvision's download is replaced by ``load_data(...)``, small synthetic arrays with a
  learnable structure (the one place where the programs differ from their published versions);
- weights: after the program's set-up section (up to ``# ---- training ----``) every parameter
  of every model it built gets the same values in both frameworks (their initializers draw from
  different random generators);
- randomness: ``DataLoader(shuffle=True)`` orders and dropout masks come from one shared numpy
  stream in both frameworks (patched for the duration of the run).
"""

from __future__ import annotations

import difflib
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

TRAINING = "# ---- training ----"

# --------------------------------------------------------------------------- the programs
MNIST_MLP = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(1)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


train_images, train_labels, test_images, test_labels = load_data("mnist")
train_loader = DataLoader(TensorDataset(torch.from_numpy(train_images),
                                        torch.from_numpy(train_labels)),
                          batch_size=64, shuffle=True)
test_loader = DataLoader(TensorDataset(torch.from_numpy(test_images),
                                       torch.from_numpy(test_labels)), batch_size=100)
model = Net().to(device)
optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
# ---- training ----
losses = []


def train(model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % 3 == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    print(f"Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/{len(test_loader.dataset)}")
    return test_loss, correct


for epoch in range(1, 3):
    train(model, device, train_loader, optimizer, epoch)
    test_loss, correct = test(model, device, test_loader)
'''

CIFAR_CNN = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

classes = ('plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
train_x, train_y, test_x, test_y = load_data("cifar10")
trainloader = DataLoader(TensorDataset(torch.from_numpy(train_x), torch.from_numpy(train_y)),
                         batch_size=32, shuffle=True, num_workers=2)
testloader = DataLoader(TensorDataset(torch.from_numpy(test_x), torch.from_numpy(test_y)),
                        batch_size=32, shuffle=False, num_workers=2)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.fc2(x)
        return x


net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
# ---- training ----
losses, lrs = [], []
for epoch in range(3):
    running_loss = 0.0
    net.train()
    for i, data in enumerate(trainloader, 0):
        inputs, labels = data
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        losses.append(loss.item())
    print(f'[{epoch + 1}] loss: {running_loss / len(trainloader):.3f}')
    scheduler.step()
    lrs.append(scheduler.get_last_lr()[0])

correct = 0
total = 0
correct_pred = {classname: 0 for classname in classes}
net.eval()
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = net(images)
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
        for label, prediction in zip(labels, predicted):
            if label == prediction:
                correct_pred[classes[label]] += 1
accuracy = 100 * correct // total
print(f'Accuracy of the network on the test images: {accuracy} %')
'''

CHAR_LSTM = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

text = load_data("text")
chars = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for ch, i in stoi.items()}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data[:nbatch * bsz]
    return data.view(bsz, -1).contiguous()


class CharRNN(nn.Module):
    def __init__(self, vocab_size, hidden_size=32, num_layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 16)
        self.drop = nn.Dropout(0.1)
        self.lstm = nn.LSTM(16, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, hidden=None):
        out, hidden = self.lstm(self.drop(self.embed(x)), hidden)
        return self.fc(out), hidden


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


model = CharRNN(len(chars))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
# ---- training ----
seq_len = 12
train_data = batchify(data, 8)
losses = []
for epoch in range(3):
    model.train()
    hidden = None
    for i in range(0, train_data.size(1) - 1, seq_len):
        n = min(seq_len, train_data.size(1) - 1 - i)
        x, y = train_data[:, i:i + n], train_data[:, i + 1:i + 1 + n]
        if hidden is not None:
            hidden = repackage_hidden(hidden)
        logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits.view(-1, len(chars)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())

model.eval()
idx = torch.tensor([[stoi[text[0]]]])
hidden, out = None, [text[0]]
with torch.no_grad():
    for _ in range(30):
        logits, hidden = model(idx, hidden)
        idx = logits[:, -1].argmax(dim=-1, keepdim=True)
        out.append(itos[idx.item()])
generated = "".join(out)
print(generated)
'''

CUSTOM_DATASET = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torch.utils.data import DataLoader, Dataset


class ReviewDataset(Dataset):
    def __init__(self, sequences, labels):
        self.sequences = sequences
        self.labels = labels

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, idx):
        return torch.tensor(self.sequences[idx], dtype=torch.long), torch.tensor(self.labels[idx])


def collate_batch(batch):
    seqs, labels = zip(*batch)
    lengths = torch.tensor([len(s) for s in seqs])
    padded = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    return padded, lengths, torch.stack(labels)


class BagOfEmbeddings(nn.Module):
    def __init__(self, vocab_size, dim, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, tokens, lengths):
        mask = (tokens != 0).unsqueeze(-1).float()
        summed = (self.embedding(tokens) * mask).sum(dim=1)
        return self.fc(summed / lengths.unsqueeze(1).float())


sequences, labels = load_data("sequences")
loader = DataLoader(ReviewDataset(sequences, labels), batch_size=16, shuffle=True,
                    collate_fn=collate_batch, drop_last=True)
model = BagOfEmbeddings(50, 16, 3)
optimizer = optim.Adam(model.parameters(), lr=1e-2)
# ---- training ----
losses = []
for epoch in range(4):
    for tokens, lengths, target in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(tokens, lengths), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
batch_shapes = [tuple(tokens.shape) for tokens, _, _ in loader]
'''

CHECKPOINT = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

X, Y = load_data("regression")
x, y = torch.from_numpy(X), torch.from_numpy(Y)
PATH = "checkpoint.pt"


def make():
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    return model, optimizer, scheduler


model, optimizer, scheduler = make()
# ---- training ----
losses = []


def train_steps(model, optimizer, scheduler, steps, record):
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        record.append(loss.item())
    return loss


loss = train_steps(model, optimizer, scheduler, 5, losses)
torch.save({
    'epoch': 5,
    'model_state_dict': model.state_dict(),
    'optimizer_state_dict': optimizer.state_dict(),
    'scheduler_state_dict': scheduler.state_dict(),
    'loss': loss,
}, PATH)

continued = []
train_steps(model, optimizer, scheduler, 5, continued)

model2, optimizer2, scheduler2 = make()
checkpoint = torch.load(PATH)
model2.load_state_dict(checkpoint['model_state_dict'])
optimizer2.load_state_dict(checkpoint['optimizer_state_dict'])
scheduler2.load_state_dict(checkpoint['scheduler_state_dict'])
epoch = checkpoint['epoch']
saved_loss = float(checkpoint['loss'])
resumed = []
train_steps(model2, optimizer2, scheduler2, 5, resumed)
resume_matches = all(abs(a - b) <= 1e-6 * abs(b) for a, b in zip(resumed, continued))
'''

TRANSFER = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


class TinyNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.fc(torch.flatten(x, 1))


images, targets, _, _ = load_data("cifar10")
loader = DataLoader(TensorDataset(torch.from_numpy(images), torch.from_numpy(targets % 4)),
                    batch_size=32, shuffle=True)
model = TinyNet()  # "pretrained": its weights are loaded by the harness
for param in model.parameters():
    param.requires_grad = False
model.fc = nn.Linear(model.fc.in_features, 4)
optimizer = optim.SGD(model.fc.parameters(), lr=0.05, momentum=0.9)
# ---- training ----
losses = []
before = model.features[0].weight.detach().clone()


def run_epoch():
    model.train()
    for inputs, labels in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


run_epoch()
frozen_unchanged = torch.equal(before, model.features[0].weight)
frozen_grad_is_none = model.features[0].weight.grad is None
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

model.features.requires_grad_(True)
optimizer.add_param_group({'params': model.features.parameters(), 'lr': 0.005})
run_epoch()
unfrozen_changed = not torch.equal(before, model.features[0].weight)
group_lrs = [group['lr'] for group in optimizer.param_groups]
'''

PROGRAMS = {
    "mnist_mlp": (MNIST_MLP, ["test_loss", "correct"]),
    "cifar_cnn_bn_dropout_steplr": (CIFAR_CNN, ["lrs", "accuracy", "correct_pred"]),
    "char_lstm": (CHAR_LSTM, ["generated"]),
    "custom_dataset_collate_fn": (CUSTOM_DATASET, ["batch_shapes"]),
    "checkpoint_save_resume": (CHECKPOINT, ["continued", "resumed", "resume_matches", "epoch",
                                            "saved_loss"]),
    "transfer_freeze_unfreeze": (TRANSFER, ["frozen_unchanged", "frozen_grad_is_none",
                                            "trainable", "unfrozen_changed", "group_lrs"]),
}


# --------------------------------------------------------------------------- the port
def port(source: str) -> str:
    """The program for ``reference_models``: its import lines rewritten, nothing else."""
    lines = []
    for line in source.splitlines():
        line = re.sub(r"^import torch$", "import reference_models as torch", line)
        line = re.sub(r"^import torch(\.[\w.]+) as (\w+)$", r"import reference_models\1 as \2", line)
        line = re.sub(r"^from torch(\.[\w.]+)? import ", r"from reference_models\1 import ", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def changed_lines(source: str) -> list[tuple[str, str]]:
    old, new = source.splitlines(), port(source).splitlines()
    pairs = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
        if tag != "equal":
            pairs.extend(zip(old[i1:i2], new[j1:j2], strict=True))
    return pairs


# --------------------------------------------------------------------------- the harness
def load_data(kind: str) -> Any:
    """Small synthetic stand-ins for the datasets, with structure a model can learn."""
    gen = np.random.default_rng(zlib.crc32(kind.encode()))
    if kind in ("mnist", "cifar10"):
        shape = (1, 28, 28) if kind == "mnist" else (3, 16, 16)
        prototypes = gen.random((10, *shape)).astype(np.float32)

        def split(n: int) -> tuple[np.ndarray, np.ndarray]:
            labels = gen.integers(0, 10, n)
            noise = gen.standard_normal((n, *shape)).astype(np.float32) * 0.5
            return (prototypes[labels] + noise).astype(np.float32), labels.astype(np.int64)

        return (*split(320 if kind == "mnist" else 192), *split(100 if kind == "mnist" else 64))
    if kind == "text":
        return ("From fairest creatures we desire increase, that thereby beauty's rose might "
                "never die, but as the riper should by time decease, his tender heir might bear "
                "his memory. ") * 3
    if kind == "sequences":
        labels = gen.integers(0, 3, 96)
        sequences = [list(gen.integers(1 + 15 * c, 16 + 15 * c, gen.integers(3, 12)))
                     for c in labels]
        return sequences, labels.astype(np.int64)
    if kind == "regression":
        x = gen.standard_normal((64, 10)).astype(np.float32)
        w = gen.standard_normal((10, 1)).astype(np.float32)
        return x, (np.tanh(x @ w) + 0.1 * gen.standard_normal((64, 1))).astype(np.float32)
    raise ValueError(kind)


@contextmanager
def shared_randomness(framework: str, seed: int = 0) -> Iterator[None]:
    """Shuffle orders and dropout masks from one numpy stream, in either framework."""
    rng = np.random.default_rng(seed)

    def masks(shape: tuple[int, ...], p: float) -> np.ndarray:
        keep = (rng.random(shape, dtype=np.float32) >= p).astype(np.float32)
        return keep * np.float32(1 / (1 - p))

    def permutation(self) -> Iterator[int]:
        return iter(rng.permutation(len(self.data_source)).tolist())

    if framework == "torch":
        import torch.nn.functional as tf
        from torch.utils.data import RandomSampler

        original = (tf.dropout, RandomSampler.__iter__)

        def dropout(input, p=0.5, training=True, inplace=False):
            if not training or p == 0:
                return input
            return input * torch.from_numpy(masks(tuple(input.shape), p))

        tf.dropout, RandomSampler.__iter__ = dropout, permutation
        try:
            yield
        finally:
            tf.dropout, RandomSampler.__iter__ = original
    else:
        from reference_models.nn import functional as rf
        from reference_models.utils import data as rdata

        original = (rf.get_generator, rdata.RandomSampler.__iter__)
        rf.get_generator = lambda generator=None: rng  # F.dropout draws its mask from it
        rdata.RandomSampler.__iter__ = permutation
        try:
            yield
        finally:
            rf.get_generator, rdata.RandomSampler.__iter__ = original


def shared_weights(namespace: dict[str, Any], framework: str) -> int:
    """Give every parameter of the models in ``namespace`` values that depend only on the
    variable, the parameter's name and shape; returns how many parameters were set."""
    if framework == "torch":
        module_type = torch.nn.Module
    else:
        from reference_models import nn as rnn
        module_type = rnn.Module
    seen: set[int] = set()
    for variable in sorted(namespace):
        module = namespace[variable]
        if not isinstance(module, module_type):
            continue
        for name, param in module.named_parameters():
            if id(param) in seen:
                continue
            seen.add(id(param))
            current = param.detach().numpy() if framework == "torch" else param.data
            if param.ndim == 1 and np.all(current == current.flat[0]) and current.flat[0] in (0, 1):
                continue  # norm layers' ones and zeros stay
            fan_in = int(np.prod(param.shape[1:])) if param.ndim > 1 else param.shape[0]
            gen = np.random.default_rng(zlib.crc32(f"{variable}.{name}".encode()))
            bound = 1 / np.sqrt(fan_in)
            values = gen.uniform(-bound, bound, tuple(param.shape)).astype(np.float32)
            if framework == "torch":
                with torch.no_grad():
                    param.copy_(torch.from_numpy(values))
            else:
                param.data[...] = values
    return len(seen)


def run(source: str, framework: str, names: list[str], tmp_path, monkeypatch) -> dict[str, Any]:
    setup, training = source.split(TRAINING + "\n")
    namespace: dict[str, Any] = {"load_data": load_data, "__name__": "__main__"}
    monkeypatch.chdir(tmp_path)
    with shared_randomness(framework):
        exec(compile(setup, f"<{framework} set-up>", "exec"), namespace)  # noqa: S102
        assert shared_weights(namespace, framework) > 0
        exec(compile(training, f"<{framework} training>", "exec"), namespace)  # noqa: S102
    return {name: namespace[name] for name in ["losses", *names]}


def _plain(value: Any) -> Any:
    """Tensors of either framework as numpy, containers element by element."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray | np.generic):
        value = value.numpy()
    return value


# --------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_only_import_lines_change(name: str) -> None:
    source, _ = PROGRAMS[name]
    pairs = changed_lines(source)
    assert pairs, "the port changed nothing"
    for old, new in pairs:
        assert re.match(r"^(import|from) torch\b", old), old
        assert new.startswith(("import reference_models", "from reference_models")), new
    assert len(port(source).splitlines()) == len(source.splitlines())


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_gives_pytorchs_results(name: str, tmp_path, monkeypatch) -> None:
    source, names = PROGRAMS[name]
    (tmp_path / "torch").mkdir()
    (tmp_path / "ours").mkdir()
    theirs = run(source, "torch", names, tmp_path / "torch", monkeypatch)
    ours = run(port(source), "reference_models", names, tmp_path / "ours", monkeypatch)
    assert len(ours["losses"]) == len(theirs["losses"]) > 3
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-5, atol=1e-6)
    assert theirs["losses"][-1] < theirs["losses"][0]  # the program trains at all
    for key in names:
        a, b = _plain(ours[key]), _plain(theirs[key])
        if isinstance(b, float) or isinstance(b, list) and b and isinstance(b[0], float):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            assert a == b, key
