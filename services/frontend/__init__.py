"""The web page of the FashionMNIST stack: a Flask app that shows the model and asks the inference API."""
